"""Starting, joining and reusing Ray (setlist.data.ray_cluster)."""

from __future__ import annotations

import pytest

from setlist.data import ray_cluster
from setlist.errors import ConfigError


def test_a_running_ray_is_reused_and_left_running(ray_session: None) -> None:
    import ray

    assert ray_cluster.start_ray(None, cpus=2) is False
    with ray_cluster.ray_session(None, cpus=2):
        assert ray_cluster.cluster_cpus() == 2  # the session fixture's local Ray
    assert ray.is_initialized()


def test_no_cpus_is_refused() -> None:
    pytest.importorskip("ray")
    with pytest.raises(ConfigError, match="at least 1 CPU, got 0"):
        ray_cluster.start_ray(None, cpus=0)


def test_the_address_is_the_option_else_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from setlist.cli.common import ray_address
    from setlist.config import get_settings

    get_settings.cache_clear()
    assert ray_address(None) is None  # no address: a local Ray
    monkeypatch.setenv("SETLIST_RAY_ADDRESS", "ray://head:10001")
    get_settings.cache_clear()
    try:
        assert ray_address(None) == "ray://head:10001"
        assert ray_address("auto") == "auto"
    finally:
        get_settings.cache_clear()
