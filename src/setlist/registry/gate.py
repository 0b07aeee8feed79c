"""The promotion gate: ``champion`` moves to a candidate only on significant evidence.

The rule, in order:

1. a candidate without a finite ``ndcg@10`` (the gate metric) is never promoted;
2. with no champion yet, the candidate is promoted;
3. a candidate that already is the champion changes nothing;
4. with paired evidence (both models evaluated on the same test users, same relevant items;
   see :func:`setlist.evaluate.stats.compare_paired`), the candidate is promoted only when it is
   significantly better: two-sided Wilcoxon signed-rank p < ``alpha`` (0.05) over the per-user
   differences AND the bootstrap 95% interval of the mean difference entirely above 0, on at
   least ``min_users`` (20) paired users;
5. without paired evidence (a caller that has no test split to evaluate the champion on) the
   recorded means are compared and the candidate must be strictly higher; the reason says
   ``unpaired`` so the weaker evidence is visible. The pipeline and ``setlist tune`` always
   supply paired evidence.

Every decision is recorded on the candidate's run (tags ``gate.*``; metrics ``gate.p_value``,
``gate.mean_diff``, ``gate.ci_low``, ``gate.ci_high``, values) and on its model version, which
is what ``setlist models list`` shows.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from setlist.errors import ConfigError
from setlist.evaluate.stats import PairedComparison

if TYPE_CHECKING:
    from setlist.registry.store import ModelVersion, Registry

log = logging.getLogger(__name__)

DEFAULT_METRIC = "ndcg@10"
ALPHA = 0.05
MIN_USERS = 20
RULE = (
    f"promote if no champion, else if Wilcoxon p < {ALPHA} and the bootstrap 95% interval of "
    f"the mean per-user difference is above 0 (>= {MIN_USERS} paired users)"
)


@dataclass
class PromotionDecision:
    """What the promotion gate decided about a candidate, and why."""

    promoted: bool
    reason: str
    candidate: ModelVersion
    champion_before: ModelVersion | None
    metric: str
    candidate_value: float
    champion_value: float | None
    comparison: PairedComparison | None = None

    @property
    def test(self) -> str:
        return "wilcoxon" if self.comparison is not None else "none"


def decide(
    candidate: ModelVersion,
    value: float,
    champion: ModelVersion | None,
    comparison: PairedComparison | None,
    metric: str = DEFAULT_METRIC,
    alpha: float = ALPHA,
    min_users: int = MIN_USERS,
) -> tuple[bool, str]:
    """The rule of this module's docstring, as (promote?, reason). Pure: no registry access."""
    if not math.isfinite(value):
        return False, f"candidate {metric}={value} is not a finite number"
    if champion is None:
        return True, f"no champion yet; candidate {metric}={value:.6g}"
    if champion.version == candidate.version:
        return False, f"version {candidate.version} is already the champion"
    if comparison is not None:
        return _paired_reason(comparison, champion, metric, alpha, min_users)
    before = champion.metrics.get(metric)
    if before is None or not math.isfinite(before):
        return True, f"champion v{champion.version} has no finite {metric}; candidate {value:.6g}"
    if value > before:
        return (
            True,
            f"unpaired: candidate {metric}={value:.6g} > champion v{champion.version} {before:.6g}",
        )
    return False, (
        f"unpaired: candidate {metric}={value:.6g} is not higher than champion "
        f"v{champion.version} {before:.6g}"
    )


def _paired_reason(
    c: PairedComparison, champion: ModelVersion, metric: str, alpha: float, min_users: int
) -> tuple[bool, str]:
    figures = (
        f"{metric} {c.candidate_mean:.4f} vs champion v{champion.version} {c.reference_mean:.4f} "
        f"on {c.n_users} paired users: diff {c.diff.mean:+.4f} "
        f"[{c.diff.low:+.4f}, {c.diff.high:+.4f}], p={c.p_value:.3g}"
    )
    if c.n_users < min_users:
        return False, f"too few paired users ({c.n_users} < {min_users}): {figures}"
    if c.significantly_better(alpha):
        return True, f"significantly better: {figures}"
    return False, f"not significantly better (needs p < {alpha} and interval > 0): {figures}"


def promote(
    registry: Registry,
    candidate: ModelVersion,
    comparison: PairedComparison | None = None,
    metric: str = DEFAULT_METRIC,
    alpha: float = ALPHA,
    min_users: int = MIN_USERS,
) -> PromotionDecision:
    """Run the gate for ``candidate``; move ``champion`` when it passes; record the decision."""
    if metric not in candidate.metrics:
        known = ", ".join(sorted(candidate.metrics)) or "none"
        raise ConfigError(
            f"version {candidate.version} has no metric {metric!r} (it has: {known})",
            field="metric",
        )
    value = float(candidate.metrics[metric])
    before = registry.champion()
    promoted, reason = decide(candidate, value, before, comparison, metric, alpha, min_users)
    if promoted:
        registry.set_alias("champion", candidate.version)
        log.info("promoted %s version %s: %s", candidate.name, candidate.version, reason)
    champion_value = None if before is None else before.metrics.get(metric)
    if comparison is not None:
        champion_value = comparison.reference_mean
    decision = PromotionDecision(
        promoted=promoted,
        reason=reason,
        candidate=registry.get(candidate.version),
        champion_before=before,
        metric=metric,
        candidate_value=value,
        champion_value=champion_value,
        comparison=comparison,
    )
    if before is None or before.version != candidate.version:
        # Re-running the gate on the champion changes nothing; keep its recorded decision.
        record(registry, decision)
    return decision


def record(registry: Registry, d: PromotionDecision) -> None:
    """Log the decision on the candidate's run and its model version."""
    tags = {
        "gate.promoted": str(d.promoted).lower(),
        "gate.reason": d.reason[:5000],
        "gate.metric": d.metric,
        "gate.test": d.test,
        "gate.rule": RULE,
        "gate.champion_before": "" if d.champion_before is None else d.champion_before.version,
    }
    metrics = {"gate.candidate_value": d.candidate_value}
    if d.champion_value is not None:
        metrics["gate.champion_value"] = float(d.champion_value)
    if d.comparison is not None:
        c = d.comparison
        metrics.update(
            {
                "gate.p_value": c.p_value,
                "gate.mean_diff": c.diff.mean,
                "gate.ci_low": c.diff.low,
                "gate.ci_high": c.diff.high,
                "gate.n_users": float(c.n_users),
            }
        )
        tags.update(
            {
                "gate.p_value": f"{c.p_value:.6g}",
                "gate.ci": f"[{c.diff.low:+.6f}, {c.diff.high:+.6f}]",
                "gate.n_users": str(c.n_users),
            }
        )
    registry.annotate(d.candidate, tags, metrics)


def gate_summary(tags: dict[str, str]) -> tuple[str, str, str]:
    """(decision, p-value, interval) as ``setlist models list`` shows them, from version tags."""
    promoted = tags.get("gate.promoted")
    decision = {"true": "promoted", "false": "refused"}.get(promoted or "", "-")
    return decision, tags.get("gate.p_value", "-"), tags.get("gate.ci", "-")
