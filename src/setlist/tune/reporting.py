"""Glue for ``setlist report``: fit each model on the split, then the report's figures."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from setlist.bundle import tag_matrix
from setlist.evaluate.report import ReportEntry, build_entry, render_html
from setlist.models.specs import ModelSpec
from setlist.pipeline import Prepared, inputs, train_one

K = 10


def build_report(
    prepared: Prepared,
    specs: Sequence[ModelSpec],
    activity: tuple[float, float] | None = None,
    say: Callable[[str], None] = lambda _m: None,
) -> tuple[str, list[ReportEntry]]:
    """Fit, evaluate and describe every spec on ``prepared``; the HTML and the entries."""
    tags, _ = tag_matrix(prepared.dataset.item_tags, prepared.train.items)
    entries: list[ReportEntry] = []
    for spec in specs:
        trained = train_one(spec, prepared, say)
        rows = trained.report.user_rows
        x = inputs(spec, prepared.train.csr)
        ranked, _ = trained.model.recommend(rows, x[rows], k=K)
        entries.append(
            build_entry(
                _name(spec, [e.name for e in entries]),
                spec.kind,
                spec.describe()["params"],
                trained.report,
                ranked,
                prepared.train.csr,
                fit_seconds=trained.usage.seconds,
                peak_rss_mb=trained.usage.peak_rss_mb,
                item_tags=tags,
                activity_thresholds=activity,
            )
        )
    p = prepared
    context = {
        "dataset": p.dataset.name,
        "users": f"{p.train.shape[0]:,}",
        "items": f"{p.train.shape[1]:,}",
        "train rows": f"{p.train.nnz:,}",
        "test rows": f"{p.test.nnz:,}",
        "split": p.split.strategy,
        "test users": f"{_users(entries):,}",
        "tags": "yes" if tags is not None else "none (diversity n/a)",
    }
    return render_html(entries, context), entries


def _users(entries: list[ReportEntry]) -> int:
    return sum(n for n, _ in entries[0].activity.values()) if entries else 0


def _name(spec: ModelSpec, taken: list[str]) -> str:
    name = spec.kind
    n = 2
    while name in taken:
        name = f"{spec.kind}-{n}"
        n += 1
    return name
