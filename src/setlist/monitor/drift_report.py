"""The self-contained HTML drift report: the checks, and plots embedded as PNG (matplotlib, Agg).

Sections: the verdict and every check's figures; the two windows' sizes; per-user activity
(empirical CDFs, whose largest gap is the KS D); item popularity curves (cumulative share of
listeners by item rank in the reference); listen-through over time in sub-windows, each with a
bootstrap 95% interval over users. The table and image helpers are the evaluation report's, so
both reports look alike and need nothing outside the file.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from setlist.evaluate.report import _CSS, _e, _figure, _img, _png, _table
from setlist.monitor.drift import (
    DriftReport,
    WindowSummary,
    engagement,
    listens_per_user,
    ratio_bootstrap,
    user_activity,
)

SUB_WINDOWS = 6  # listen-through points per window
RESAMPLES = 300  # per point: enough for a plotted 95% interval
COLOURS = {"reference": "tab:blue", "current": "tab:orange"}


def write_html(
    report: DriftReport, reference: pl.DataFrame, current: pl.DataFrame, path: Path
) -> Path:
    """Write the report to ``path`` (folders created) and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report, reference, current), encoding="utf-8")
    return path


def render_html(report: DriftReport, reference: pl.DataFrame, current: pl.DataFrame) -> str:
    title = "setlist drift report"
    verdict = report.outcome.replace("_", " ")
    parts = [
        f"<h1>{_e(title)}</h1>",
        f"<p>current window {_e(_span(report.current))}, reference {_e(_span(report.reference))};"
        f" generated {datetime.now(UTC):%Y-%m-%d %H:%M UTC}</p>",
        f"<h2>Verdict: {_e(verdict)}</h2>",
        f"<p>{_e(report.reason())}</p>",
        _checks_table(report),
        "<h2>Windows</h2>",
        _windows_table(report),
        "<h2>Engagement per user (empirical CDF)</h2>",
        _img(_activity_plot(reference, current), "engagement events per user, both windows"),
        "<h2>Item popularity (listeners per item, items ranked by reference popularity)</h2>",
        _img(_popularity_plot(reference, current), "cumulative share of listeners by item rank"),
        "<h2>Listen-through over time (listens per impression, bootstrap 95% interval)</h2>",
        _img(_listen_through_plot(report, reference, current), "listen-through per sub-window"),
    ]
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>{''.join(parts)}"
        "</body></html>"
    )


def _span(summary: WindowSummary) -> str:
    if summary.end_us <= summary.start_us:
        return "(no events)"
    start, end = (_time(us) for us in (summary.start_us, summary.end_us))
    return f"{start:%Y-%m-%d %H:%M:%S} to {end:%Y-%m-%d %H:%M:%S} UTC"


def _time(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, UTC)


def _checks_table(report: DriftReport) -> str:
    rows = [
        [
            c.name,
            c.kind,
            _num(c.statistic),
            _num(c.threshold),
            "n/a" if c.p_value is None else f"{c.p_value:.3g}",
            "DRIFT" if c.drifted else "no",
            c.detail,
        ]
        for c in report.checks
    ]
    return _table(["check", "kind", "statistic", "threshold", "p", "drifted", "detail"], rows)


def _windows_table(report: DriftReport) -> str:
    rows = [
        [name, f"{w.events:,}", f"{w.engagement:,}", f"{w.users:,}", f"{w.items:,}"]
        for name, w in (("reference", report.reference), ("current", report.current))
    ]
    header = ["window", "events", "engagement events", "listeners engaged", "items engaged"]
    return _table(header, rows)


def _num(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.4g}"


def _activity_plot(reference: pl.DataFrame, current: pl.DataFrame) -> bytes:
    fig, ax = _figure()
    for name, frame in (("reference", reference), ("current", current)):
        counts = np.sort(user_activity(frame))
        if len(counts):
            ecdf = np.arange(1, len(counts) + 1) / len(counts)
            label = f"{name} ({len(counts):,} users)"
            ax.step(counts, ecdf, where="post", label=label, color=COLOURS[name])
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("engagement events per user in the window")
    ax.set_ylabel("share of users at or below")
    _finish(ax)
    return _png(fig)


def _popularity_plot(reference: pl.DataFrame, current: pl.DataFrame) -> bytes:
    fig, ax = _figure()
    listeners = [
        engagement(f).select("user_id", "item_id").unique().group_by("item_id").len()
        for f in (reference, current)
    ]
    order = (
        listeners[0]
        .rename({"len": "ref"})
        .join(listeners[1].rename({"len": "cur"}), on="item_id", how="full", coalesce=True)
        .fill_null(0)
        .sort(["ref", "cur", "item_id"], descending=[True, True, False])
    )
    for name, column in (("reference", "ref"), ("current", "cur")):
        values = order.get_column(column).to_numpy().astype(np.float64)
        if values.sum() > 0:
            rank = np.arange(1, len(values) + 1)
            ax.plot(rank, np.cumsum(values) / values.sum(), label=name, color=COLOURS[name])
    ax.set_xscale("log")
    ax.set_xlabel("item rank by reference listeners (items new in the current window last)")
    ax.set_ylabel("cumulative share of listeners")
    _finish(ax)
    return _png(fig)


def _listen_through_plot(
    report: DriftReport, reference: pl.DataFrame, current: pl.DataFrame
) -> bytes:
    fig, ax = _figure()
    rng = np.random.default_rng(0)
    for name, frame, summary in (
        ("reference", reference, report.reference),
        ("current", current, report.current),
    ):
        points = _sub_windows(frame, summary, rng)
        if points:
            x, y, low, high = (np.array(v) for v in zip(*points, strict=True))
            bars = [y - low, high - y]
            ax.errorbar(x, y, yerr=bars, fmt="o-", capsize=3, label=name, color=COLOURS[name])
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("listens per impression")
    ax.set_ylim(bottom=0)
    fig.autofmt_xdate()
    _finish(ax)
    return _png(fig)


def _sub_windows(
    frame: pl.DataFrame, summary: WindowSummary, rng: np.random.Generator
) -> list[tuple[Any, float, float, float]]:
    """(middle time, listen-through, low, high) per sub-window that holds impressions."""
    if summary.end_us <= summary.start_us:
        return []
    edges = np.linspace(summary.start_us, summary.end_us, SUB_WINDOWS + 1).astype(np.int64)
    out = []
    for start, end in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
        part = frame.filter((pl.col("ts_us") >= start) & (pl.col("ts_us") < end))
        shown, listened = listens_per_user(part)
        if len(shown) == 0:
            continue
        boot = ratio_bootstrap(shown, listened, RESAMPLES, rng)
        low, high = np.quantile(boot, [0.025, 0.975])
        value = float(listened.sum() / shown.sum())
        out.append((_time((start + end) // 2), value, float(low), float(high)))
    return out


def _finish(ax: Any) -> None:
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
