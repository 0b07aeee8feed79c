"""What the answers cover: catalogue coverage over a period and per-answer tag diversity.

Both are measured on the items actually shown, at O(k) per answer, so that they can run on the
hot route: coverage is a flag per catalogue row (set when the item is first shown in the
period; the flags are cleared at the end of each period, whose count is kept as the
``previous`` figure), diversity is
the share of distinct primary tags (each item's most counted Last.fm tag) among the answer's
tagged items. The per-item primary tags are computed once per model version, on its first answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from setlist.bundle import ModelBundle

UNTAGGED = -1


class Observed(NamedTuple):
    """What one answer changed: the period's distinct items and the answer's diversity."""

    catalogue: int
    distinct: int
    previous: int | None
    diversity: float | None
    new_catalogue: bool


@dataclass
class _Period:
    bundle: ModelBundle
    served: bytearray  # one byte per catalogue row: plain indexing, faster than numpy scalars
    primary: list[int]
    started: float
    distinct: int = 0
    previous: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def primary_tags(bundle: ModelBundle) -> npt.NDArray[np.int32]:
    """Each item's most counted tag (column of ``item_tags``), or ``UNTAGGED``."""
    n = len(bundle.items)
    tags = bundle.item_tags
    if tags is None or tags.nnz == 0:
        return np.full(n, UNTAGGED, dtype=np.int32)
    primary = np.asarray(tags.argmax(axis=1)).ravel().astype(np.int32)
    primary[np.diff(tags.indptr) == 0] = UNTAGGED
    return primary


def tag_diversity(primary: Sequence[int]) -> float | None:
    """Distinct tags / tagged items of one answer; None below two tagged items."""
    tagged = [t for t in primary if t != UNTAGGED]
    if len(tagged) < 2:
        return None
    return len(set(tagged)) / len(tagged)


class CoverageTracker:
    """Per arm: the items served in the current period, over that arm's current catalogue."""

    def __init__(self, period_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.period_s = period_s
        self.clock = clock
        self._arms: dict[str, _Period] = {}
        self._lock = threading.Lock()

    def observe(self, arm: str, bundle: ModelBundle, item_rows: Iterable[int]) -> Observed:
        """One answer of ``arm`` shown: its items as rows of ``bundle``'s catalogue."""
        period, new_catalogue = self._period(arm, bundle)
        primary, n = period.primary, len(period.served)
        rows = [r for r in item_rows if 0 <= r < n]
        with period.lock:
            now = self.clock()
            if now - period.started >= self.period_s:
                # Whole periods only: a quiet hour must not carry an earlier hour's items.
                period.previous = period.distinct
                period.served[:] = bytes(len(period.served))
                period.distinct = 0
                period.started = now
            served = period.served
            for r in rows:
                if not served[r]:
                    served[r] = 1
                    period.distinct += 1
            distinct, previous = period.distinct, period.previous
        diversity = tag_diversity([primary[r] for r in rows])
        return Observed(len(served), distinct, previous, diversity, new_catalogue)

    def _period(self, arm: str, bundle: ModelBundle) -> tuple[_Period, bool]:
        period = self._arms.get(arm)
        if period is not None and period.bundle is bundle:
            return period, False
        with self._lock:
            period = self._arms.get(arm)
            if period is not None and period.bundle is bundle:
                return period, False
            # A hot-swapped version starts a fresh period: its catalogue may differ.
            served = bytearray(len(bundle.items))
            primary = primary_tags(bundle).tolist()
            period = _Period(bundle, served, primary, self.clock())
            self._arms[arm] = period
            return period, True
