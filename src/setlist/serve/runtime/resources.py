"""The service's memory and the limit it runs under, read at scrape time for the 80% alert.

The limit is the cgroup's (a container's memory limit, cgroup v2 or v1) where one is set, else
the machine's total. Under a cgroup limit the usage is the cgroup's working set (usage less
inactive page cache, as the kubelet counts it: what the OOM killer weighs); without one, the
resident memory of the service's own processes (with several workers: the supervisor and its
children), since the machine's other processes are not the service's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

CGROUP = Path("/sys/fs/cgroup")
PROC = Path("/proc")


@dataclass(frozen=True)
class Memory:
    usage_bytes: float
    limit_bytes: float
    source: str  # "cgroup" or "process"


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _number(text: str | None) -> float | None:
    return float(text) if text is not None and text.isdigit() else None


def _stat(path: Path, key: str) -> float:
    for line in (_read(path) or "").splitlines():
        name, _, value = line.partition(" ")
        if name == key and value.isdigit():
            return float(value)
    return 0.0


def cgroup_memory(root: Path = CGROUP) -> tuple[float, float] | None:
    """(working set, limit) of this process's cgroup, or None without a limit."""
    v2_limit = _number(_read(root / "memory.max"))  # "max" (no limit) is not a number
    if v2_limit is not None:
        usage = _number(_read(root / "memory.current")) or 0.0
        return max(usage - _stat(root / "memory.stat", "inactive_file"), 0.0), v2_limit
    v1 = root / "memory"
    v1_limit = _number(_read(v1 / "memory.limit_in_bytes"))
    if v1_limit is not None:
        usage = _number(_read(v1 / "memory.usage_in_bytes")) or 0.0
        inactive = _stat(v1 / "memory.stat", "total_inactive_file")
        return max(usage - inactive, 0.0), v1_limit
    return None


def machine_total(proc: Path = PROC) -> float:
    for line in (_read(proc / "meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return float(line.split()[1]) * 1024
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def resident_bytes(pid: int, proc: Path = PROC) -> float:
    fields = (_read(proc / str(pid) / "statm") or "").split()
    return float(fields[1]) * os.sysconf("SC_PAGE_SIZE") if len(fields) > 1 else 0.0


def service_pids(workers: bool, proc: Path = PROC) -> list[int]:
    """This process; with workers, the supervisor (our parent) and all its children."""
    if not workers:
        return [os.getpid()]
    parent = os.getppid()
    children = _read(proc / str(parent) / "task" / str(parent) / "children") or ""
    pids = {parent, os.getpid(), *(int(p) for p in children.split() if p.isdigit())}
    return sorted(pids)


def read_memory(workers: bool, root: Path = CGROUP, proc: Path = PROC) -> Memory:
    total = machine_total(proc)
    group = cgroup_memory(root)
    if group is not None and group[1] < total:  # v1 reports "no limit" as a huge number
        return Memory(group[0], group[1], "cgroup")
    usage = sum(resident_bytes(pid, proc) for pid in service_pids(workers, proc))
    return Memory(usage, total, "process")


class MemoryCollector(Collector):
    """``setlist_memory_usage_bytes`` and ``setlist_memory_limit_bytes``, read per scrape."""

    def __init__(self, workers: bool) -> None:
        self.workers = workers

    def collect(self) -> Iterator[GaugeMetricFamily]:
        memory = read_memory(self.workers)
        usage = GaugeMetricFamily(
            "setlist_memory_usage_bytes",
            "Memory the service uses: cgroup working set under a limit, else its processes' RSS.",
            labels=["source"],
        )
        usage.add_metric([memory.source], memory.usage_bytes)
        yield usage
        limit = GaugeMetricFamily(
            "setlist_memory_limit_bytes",
            "Memory the service may use: the cgroup limit where set, else the machine's total.",
            labels=["source"],
        )
        limit.add_metric([memory.source], memory.limit_bytes)
        yield limit
