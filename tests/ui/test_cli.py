"""`setlist ui`: the Streamlit command line it becomes, and the API URL it passes on."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from setlist.cli import app
from setlist.cli import ui as ui_cli
from setlist.config import get_settings


def test_ui_execs_streamlit_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str], dict[str, str]]] = []

    def fake_exec(path: str, argv: list[str], env: dict[str, str]) -> Any:
        calls.append((path, argv, env))
        raise SystemExit(0)

    monkeypatch.setattr(ui_cli.os, "execve", fake_exec)
    monkeypatch.delenv("SETLIST_UI_API_URL", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["ui", "--api-url", "http://127.0.0.1:9999"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    (path, argv, env) = calls[0]
    assert argv[:4] == [path, "-m", "streamlit", "run"]
    assert argv[4].endswith("streamlit_app.py")
    assert argv[argv.index("--server.address") + 1] == "127.0.0.1"
    assert argv[argv.index("--server.port") + 1] == "8501"
    assert argv[argv.index("--server.headless") + 1] == "true"
    assert env["SETLIST_UI_API_URL"] == "http://127.0.0.1:9999"
    assert "http://127.0.0.1:8501" in result.output


def test_api_url_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from setlist.config import Settings

    monkeypatch.delenv("SETLIST_UI_API_URL", raising=False)
    assert Settings().ui_api_url == "http://127.0.0.1:8000"
    monkeypatch.setenv("SETLIST_UI_API_URL", "http://10.0.0.1:80")
    assert Settings().ui_api_url == "http://10.0.0.1:80"
