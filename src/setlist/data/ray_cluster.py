"""Start, join or reuse Ray: one local Ray on loopback, or an existing cluster at an address.

Every Ray command (``recommend-all --backend ray``, ``tune --backend ray``, ``data etl
--backend ray``) goes through :func:`ray_session`, so that pointing them at a cluster is only
``--ray-address`` (or ``SETLIST_RAY_ADDRESS``): ``auto`` inside a cluster's pod (KubeRay's
RayJob), ``ray://HOST:10001`` from outside (Ray Client), ``HOST:6379`` from a node. Without an
address a private local Ray starts with ``num_cpus`` CPUs, no dashboard, bound to 127.0.0.1.
A Ray already started in this process (a test session's, a notebook's) is reused and left
running; one started here is shut down at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from setlist.errors import ConfigError


def start_ray(address: str | None = None, cpus: int = 2) -> bool:
    """Make Ray ready in this process; True when this call started (or joined) it."""
    import ray

    if cpus < 1:
        raise ConfigError(f"Ray needs at least 1 CPU, got {cpus}", field="cpus")
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    if address:
        try:
            ray.init(address=address, **options)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise ConfigError(
                f"cannot join the Ray cluster at {address!r}: {exc}", field="ray_address"
            ) from exc
    else:
        ray.init(num_cpus=cpus, include_dashboard=False, _node_ip_address="127.0.0.1", **options)
    return True


@contextmanager
def ray_session(address: str | None = None, cpus: int = 2) -> Iterator[None]:
    """Ray for the length of a ``with`` block: started or joined here is shut down after."""
    started = start_ray(address, cpus)
    try:
        yield None
    finally:
        if started:
            import ray

            ray.shutdown()


def cluster_cpus() -> int:
    """CPUs the running Ray offers (the local one's ``num_cpus``, or the whole cluster's)."""
    import ray

    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    return max(1, int(resources.get("CPU", 1)))
