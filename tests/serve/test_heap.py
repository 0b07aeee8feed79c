"""gc_freeze: after a start-up load the loaded models sit in the permanent generation."""

from __future__ import annotations

import gc
from pathlib import Path

from fastapi.testclient import TestClient

from setlist.serve import create_app
from tests.serve.conftest import make_settings


def _start(bundle_dir: Path, home: Path, freeze: bool) -> int:
    gc.unfreeze()
    try:
        settings = make_settings(home, gc_freeze=freeze)
        with TestClient(create_app(settings, bundle_dir)) as client:
            assert client.get("/v1/users/u1/recommendations").status_code == 200
            return gc.get_freeze_count()
    finally:
        gc.unfreeze()  # the rest of the suite runs as configured (conftest: off)


def test_a_start_freezes_the_heap_only_when_asked(bundle_dir: Path, tmp_path: Path) -> None:
    frozen = _start(bundle_dir, tmp_path / "on", True)
    assert frozen > 10_000  # every object alive after the load, the bundle's among them
    assert _start(bundle_dir, tmp_path / "off", False) == 0
