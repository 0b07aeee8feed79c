"""The README's reference sections stay true to the code."""

from __future__ import annotations

from pathlib import Path

import typer.main

from setlist.cli import app
from setlist.config import Settings

README = (Path(__file__).parents[1] / "README.md").read_text()


def _env_var(name: str) -> str:
    return "MLFLOW_TRACKING_URI" if name == "mlflow_tracking_uri" else f"SETLIST_{name.upper()}"


def test_every_setting_is_in_the_configuration_table() -> None:
    missing = [
        name for name in Settings.model_fields if f"| `{name}` | `{_env_var(name)}` |" not in README
    ]
    assert not missing, f"settings missing from the README's configuration table: {missing}"


def _commands(group: typer.Typer, prefix: str = "setlist") -> list[str]:
    found = [f"{prefix} {c.name or c.callback.__name__}" for c in group.registered_commands]  # type: ignore[union-attr]
    for sub in group.registered_groups:
        assert sub.typer_instance is not None
        found += _commands(sub.typer_instance, f"{prefix} {sub.name}")
    return found


def test_every_command_is_in_the_cli_reference() -> None:
    typer.main.get_command(app)  # fails if the app cannot be built
    missing = [cmd for cmd in _commands(app) if f"`{cmd}" not in README]
    assert not missing, f"commands missing from the README's CLI reference: {missing}"


def _module_table() -> list[str]:
    """The paths in the first column of the architecture section's module table."""
    rows = README.split("| module | one line |", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    cells = [row.split(" | ", 1)[0] for row in rows]
    return [p for cell in cells for p in cell.split("`")[1::2]]


def test_every_module_in_the_architecture_table_exists() -> None:
    src = Path(__file__).parents[1] / "src" / "setlist"
    paths = _module_table()
    assert len(paths) > 30, "the module table was not found"
    missing = [p for p in paths if not (src / p).exists()]
    assert not missing, f"the README's module table names modules that do not exist: {missing}"


def test_every_layer_of_the_contract_is_in_the_architecture_picture() -> None:
    import tomllib

    config = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    layers = config["tool"]["importlinter"]["contracts"][0]["layers"]
    picture = README.split("## Architecture", 1)[1].split("## CLI reference", 1)[0]
    lines = [line.split("  ")[0].strip() for line in picture.splitlines()]
    for layer in layers:
        names = " | ".join(name.strip().removeprefix("setlist.") for name in layer.split("|"))
        assert names in lines, f"layer {layer!r} is not drawn in the README's architecture picture"
