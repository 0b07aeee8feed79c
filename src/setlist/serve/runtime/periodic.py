"""A daemon thread that calls one function every few seconds until stopped (the watchers)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Every:
    """Call ``fn`` every ``interval_s`` seconds from :meth:`start` until :meth:`stop`; a failure
    is logged as ``what`` failed and the next call comes anyway (a watcher outlives any one)."""

    def __init__(self, name: str, what: str, fn: Callable[[], object]) -> None:
        self.name, self.what, self.fn = name, what, fn
        self.stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, interval_s: float) -> None:
        """Start calling (``interval_s`` <= 0, or already started: nothing)."""
        if interval_s <= 0 or self._thread is not None:
            return

        def loop() -> None:
            while not self.stopped.wait(interval_s):
                try:
                    self.fn()
                except Exception:  # noqa: BLE001 - logged; the next call comes anyway
                    log.exception("%s failed", self.what)

        self._thread = threading.Thread(target=loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self.stopped.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
