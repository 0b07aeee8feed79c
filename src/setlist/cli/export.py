"""`setlist models export`: a two-tower version's listener tower as ONNX and TorchScript."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from setlist.cli.common import console, models_app, settings_with
from setlist.errors import ConfigError


@models_app.command("export")
def export(
    out: Annotated[Path, typer.Option(help="Folder for listener_tower.onnx and .pt.")] = Path(
        "two-tower-export"
    ),
    version: Annotated[str, typer.Option(help="Registered version or alias.")] = "champion",
    bundle: Annotated[
        Path | None, typer.Option(help="A bundle folder instead of a registered version.")
    ] = None,
) -> None:
    """Export a two-tower model's listener tower (history -> vector) as ONNX and TorchScript.

    Examples: setlist models export --out ./tower; setlist models export --bundle ./b --out t
    """
    from setlist.bundle import ModelBundle
    from setlist.models.two_tower import TwoTowerRecommender

    if bundle is not None:
        loaded = ModelBundle.load(bundle)
    else:
        from setlist.registry import Registry, RegistryConfig

        registry = Registry(RegistryConfig.from_settings(settings_with()))
        with tempfile.TemporaryDirectory(prefix="setlist-export-") as tmp:
            loaded = ModelBundle.load(registry.download(version, Path(tmp)))
    model = loaded.model
    if not isinstance(model, TwoTowerRecommender):
        raise ConfigError(
            f"only a two_tower model exports a listener tower; this one is {model.kind!r}",
            field="version",
            value=str(bundle or version),
        )
    seconds = model.export(out)
    for name, took in seconds.items():
        console.print(f"wrote {out / f'listener_tower.{name}'} ({took:.1f} s)")
