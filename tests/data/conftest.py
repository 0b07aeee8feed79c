"""Helpers for the data tests: tiny files in tmp_path and a local HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest

from setlist.data.sources import SourceConfig


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def offline(tmp_path: Path) -> SourceConfig:
    """No mirror, an empty cache, downloads off."""
    return SourceConfig(mirror=None, cache_dir=tmp_path / "cache", download=False)


@dataclass
class Server:
    """A local HTTP server over ``root``; ``lies`` maps paths to a declared Content-Length."""

    root: Path
    url: str = ""
    lies: dict[str, int] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def __call__(self, name: str) -> str:
        return f"{self.url}/{name}"


class _Handler(http.server.SimpleHTTPRequestHandler):
    server_state: Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.server_state.requests.append(self.path)
        declared = self.server_state.lies.get(self.path.lstrip("/"))
        if declared is None:
            super().do_GET()
            return
        body = (self.server_state.root / self.path.lstrip("/")).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[Server]:
    """Serves tmp_path/www on 127.0.0.1 from a background thread."""
    root = tmp_path / "www"
    root.mkdir()
    state = Server(root)
    handler = type("Handler", (_Handler,), {"server_state": state})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
