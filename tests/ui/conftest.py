"""Fixtures of the UI tests: a fake API on loopback and AppTest runners of the pages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ui.fake_api import FakeApi, serve


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    api = FakeApi()
    server, thread = serve(api)
    yield api
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def dead_url() -> str:
    """A loopback URL nothing listens on (the port was bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
