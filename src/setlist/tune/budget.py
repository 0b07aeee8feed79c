"""A tuning budget as the command line says it (``90s``, ``15m``, ``1.5h``), checked up front."""

from __future__ import annotations

import math
import re

from setlist.errors import ConfigError

_BUDGET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?\s*$", re.IGNORECASE)
_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
MIN_BUDGET_S = 1.0
MAX_BUDGET_S = 7 * 24 * 3600.0


def parse_budget(text: str) -> float:
    """``"15m"`` -> 900.0 seconds (s, m, min, h; a bare number is seconds)."""
    match = _BUDGET.match(text)
    if not match:
        raise ConfigError(
            f"--budget {text!r} is not a duration; use e.g. 90s, 15m, 1.5h "
            f"(accepted range {MIN_BUDGET_S:g}s to 7 days)",
            field="budget",
        )
    seconds = float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
    if not math.isfinite(seconds) or not MIN_BUDGET_S <= seconds <= MAX_BUDGET_S:
        raise ConfigError(
            f"--budget {text!r} is {seconds:g}s; accepted range is {MIN_BUDGET_S:g}s to 7 days",
            field="budget",
        )
    return seconds
