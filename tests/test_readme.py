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
