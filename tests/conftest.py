"""Fixtures shared by every test package: isolated settings and the real-data mirror."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from setlist.config import Settings

# Every app start would collect the whole test process's heap (serve/runtime/heap.py); the one
# test of the freeze turns it on for itself. Servers the tests start inherit this.
os.environ.setdefault("SETLIST_GC_FREEZE", "false")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a private home folder (MLflow store, cache) under tmp_path."""
    mirror = os.environ.get("SETLIST_DATA_MIRROR")
    return Settings(
        home=tmp_path / "home",
        data_mirror=Path(mirror) if mirror else None,
        download=False,
        mlflow_tracking_uri=None,
    )


@pytest.fixture
def mirror() -> Path:
    """The real-data mirror (../shared/data); skips where it is absent."""
    value = os.environ.get("SETLIST_DATA_MIRROR")
    if not value or not Path(value).is_dir():
        pytest.skip("SETLIST_DATA_MIRROR is not set to a folder (real data mirror absent)")
    return Path(value)


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """One local Ray for the whole test session (2 CPUs, no dashboard, loopback), shut at the end."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
            ignore_reinit_error=True,
        )
    yield None
