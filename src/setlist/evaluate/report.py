"""A self-contained HTML evaluation report: tables, and matplotlib plots embedded as PNG.

One :class:`ReportEntry` per model holds what the report shows: mean metrics with bootstrap 95%
intervals over test users, fit time and peak memory, catalogue coverage, novelty, intra-list
diversity by tag (genre), the popularity-bias curve and the per-activity breakdown. The HTML
references nothing outside itself (images are ``data:image/png;base64`` URIs), so it can be
mailed, attached to an MLflow run or opened offline.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import scipy.sparse as sp

from setlist.evaluate.beyond import (
    ACTIVITY_GROUPS,
    PopularityCurve,
    activity_groups,
    breakdown,
    intra_list_diversity,
    novelty,
    popularity_curve,
)
from setlist.evaluate.protocol import MetricsReport
from setlist.evaluate.stats import Interval, bootstrap_mean

IntArray = npt.NDArray[np.int64]
SHOWN = ("ndcg@10", "precision@10", "recall@10", "map@10")


@dataclass
class ReportEntry:
    """Everything the report says about one model."""

    name: str
    kind: str
    params: dict[str, Any]
    metrics: dict[str, float]
    intervals: dict[str, Interval]
    fit_seconds: float
    peak_rss_mb: float
    novelty: float
    diversity: float | None
    curve: PopularityCurve
    activity: dict[str, tuple[int, float]]
    extra: dict[str, Any] = field(default_factory=dict)


def build_entry(
    name: str,
    kind: str,
    params: dict[str, Any],
    report: MetricsReport,
    ranked: IntArray,
    train: sp.csr_matrix,
    *,
    fit_seconds: float,
    peak_rss_mb: float,
    item_tags: sp.csr_matrix | None = None,
    activity_thresholds: Sequence[float] | None = None,
    seed: int = 0,
) -> ReportEntry:
    """Compute a model's entry from its evaluation report and its top-10 lists.

    ``ranked`` has one row per ``report.user_rows`` (the evaluated users), item rows best first.
    """
    binary = sp.csr_matrix(train, copy=True)
    binary.data[:] = 1.0
    item_users = np.asarray(binary.sum(axis=0)).ravel()
    lengths = np.diff(binary.indptr)[report.user_rows]
    groups, _ = activity_groups(lengths, activity_thresholds)
    ndcg = report.per_user["ndcg@10"]
    diversity = None
    if item_tags is not None and item_tags.nnz:
        per_user = intra_list_diversity(ranked, item_tags)
        diversity = float(np.nanmean(per_user)) if np.isfinite(per_user).any() else None
    return ReportEntry(
        name=name,
        kind=kind,
        params=params,
        metrics=dict(report.metrics),
        intervals={m: bootstrap_mean(report.per_user[m], seed=seed) for m in SHOWN},
        fit_seconds=fit_seconds,
        peak_rss_mb=peak_rss_mb,
        novelty=float(np.nanmean(novelty(ranked, item_users, binary.shape[0]))),
        diversity=diversity,
        curve=popularity_curve(ranked, item_users),
        activity=breakdown(ndcg, groups),
    )


def render_html(entries: Sequence[ReportEntry], context: dict[str, Any]) -> str:
    """The whole report as one HTML document."""
    title = f"setlist evaluation report: {context.get('dataset', '')}"
    parts = [
        f"<h1>{_e(title)}</h1>",
        f"<p>{_e(_context_line(context))}</p>",
        "<h2>Accuracy (mean over test users, bootstrap 95% interval)</h2>",
        _metrics_table(entries),
        "<h2>Cost, coverage and beyond accuracy</h2>",
        _beyond_table(entries),
        "<h2>Quality vs training time</h2>",
        _img(_quality_vs_time(entries), "NDCG@10 against fit seconds"),
        "<h2>Popularity bias: share of recommendations by popularity decile</h2>",
        _img(_popularity_plot(entries), "recommendation share per popularity decile"),
        "<h2>NDCG@10 by listener activity</h2>",
        _activity_table(entries),
        _img(_activity_plot(entries), "NDCG@10 per activity group"),
        "<h2>Parameters</h2>",
        _params_table(entries),
    ]
    body = "\n".join(parts)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>{body}</body></html>"
    )


_CSS = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
    "text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}img{max-width:100%}"
)


def _e(text: Any) -> str:
    return html.escape(str(text))


def _context_line(context: dict[str, Any]) -> str:
    shown = {k: v for k, v in context.items() if k != "dataset"}
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return ", ".join(f"{k}: {v}" for k, v in shown.items()) + f"; generated {stamp}"


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _metrics_table(entries: Sequence[ReportEntry]) -> str:
    rows = []
    for e in entries:
        cells = [e.name]
        for m in SHOWN:
            i = e.intervals[m]
            cells.append(f"{i.mean:.4f} [{i.low:.4f}, {i.high:.4f}]")
        rows.append(cells)
    return _table(["model", *SHOWN], rows)


def _beyond_table(entries: Sequence[ReportEntry]) -> str:
    rows = [
        [
            e.name,
            f"{e.fit_seconds:.2f}",
            f"{e.peak_rss_mb:,.0f}",
            _fmt(e.metrics.get("coverage@10")),
            _fmt(e.novelty, 2),
            _fmt(e.diversity),
            _fmt(e.curve.head_share, 3),
        ]
        for e in entries
    ]
    header = [
        "model",
        "fit s",
        "peak RSS MiB",
        "coverage@10",
        "novelty (bits)",
        "intra-list diversity (tags)",
        "share in top decile",
    ]
    return _table(header, rows)


def _activity_table(entries: Sequence[ReportEntry]) -> str:
    rows = []
    for e in entries:
        cells = [e.name]
        for g in ACTIVITY_GROUPS:
            n, mean = e.activity.get(g, (0, float("nan")))
            cells.append(f"{_fmt(mean)} (n={n})")
        rows.append(cells)
    return _table(["model", *ACTIVITY_GROUPS], rows)


def _params_table(entries: Sequence[ReportEntry]) -> str:
    rows = [[e.name, e.kind, ", ".join(f"{k}={v}" for k, v in e.params.items())] for e in entries]
    return _table(["model", "kind", "parameters"], rows)


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f"<img alt='{_e(alt)}' src='data:image/png;base64,{data}'>"


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(8, 4.2), dpi=100)


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _quality_vs_time(entries: Sequence[ReportEntry]) -> bytes:
    fig, ax = _figure()
    for e in entries:
        i = e.intervals["ndcg@10"]
        x = max(e.fit_seconds, 1e-3)
        ax.errorbar([x], [i.mean], yerr=[[i.mean - i.low], [i.high - i.mean]], fmt="o", capsize=4)
        ax.annotate(e.name, (x, i.mean), textcoords="offset points", xytext=(6, 4))
    ax.set_xscale("log")
    ax.set_xlabel("fit time (s, log scale)")
    ax.set_ylabel("NDCG@10 (95% interval)")
    ax.grid(alpha=0.3)
    return _png(fig)


def _popularity_plot(entries: Sequence[ReportEntry]) -> bytes:
    fig, ax = _figure()
    if entries:
        deciles = np.arange(1, len(entries[0].curve.listens) + 1)
        ax.plot(deciles, entries[0].curve.listens, "k--", label="training listens")
        for e in entries:
            ax.plot(deciles, e.curve.recommended, marker="o", label=e.name)
        ax.set_xticks(deciles)
    ax.set_xlabel("item popularity decile (1 = most popular 10% of items)")
    ax.set_ylabel("share")
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_ylim(bottom=0, top=1.05)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def _activity_plot(entries: Sequence[ReportEntry]) -> bytes:
    fig, ax = _figure()
    width = 0.8 / max(len(entries), 1)
    x = np.arange(len(ACTIVITY_GROUPS))
    for n, e in enumerate(entries):
        means = [e.activity.get(g, (0, float("nan")))[1] for g in ACTIVITY_GROUPS]
        ax.bar(x + n * width, np.nan_to_num(means), width, label=e.name)
    ax.set_xticks(x + width * (len(entries) - 1) / 2, list(ACTIVITY_GROUPS))
    ax.set_ylabel("NDCG@10")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return _png(fig)


def render_challenge_html(
    tables: Mapping[str, pl.DataFrame], context: dict[str, Any], k: int = 500
) -> str:
    """The playlist report: per model, the challenge's per-category table (R-precision, NDCG,
    clicks with bootstrap intervals; see :func:`setlist.evaluate.playlist_challenge.
    challenge_table`), and one table of R-precision model x category."""
    title = f"setlist playlist continuation report: {context.get('dataset', '')}"
    parts = [f"<h1>{_e(title)}</h1>", f"<p>{_e(_context_line(context))}</p>"]
    names = list(tables)
    if names:
        cats = tables[names[0]].get_column("category").to_list()
        rows = []
        for name in names:
            values = dict(
                zip(
                    tables[name]["category"].to_list(),
                    tables[name]["r_precision"].to_list(),
                    strict=True,
                )
            )
            rows.append([name, *(_fmt(values.get(c)) for c in cats)])
        parts += [f"<h2>R-precision by category (k={k})</h2>", _table(["model", *cats], rows)]
    for name in names:
        rows = []
        for row in tables[name].iter_rows(named=True):
            rows.append(
                [
                    str(row["category"]),
                    str(row["n_playlists"]),
                    *(
                        f"{_fmt(row[m])} [{_fmt(row[m + '_low'])}, {_fmt(row[m + '_high'])}]"
                        for m in ("r_precision", "ndcg", "clicks")
                    ),
                ]
            )
        header = ["category", "playlists", "R-precision [95% CI]", "NDCG [95% CI]",
                  "clicks [95% CI]"]  # fmt: skip
        parts += [f"<h2>{_e(name)}</h2>", _table(header, rows)]
    body = "\n".join(parts)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>{body}</body></html>"
    )
