"""`setlist drift report`: data and performance drift of the latest window of events, as HTML."""

from __future__ import annotations

import dataclasses
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from setlist.cli.common import app, console, settings_with, stages
from setlist.errors import ConfigError, DataError

drift_app = typer.Typer(help="Drift between windows of events.", no_args_is_help=True)
app.add_typer(drift_app, name="drift")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|m|min|h|d)?\s*$", re.IGNORECASE)
_UNITS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86_400.0}
MAX_WINDOW_S = 366 * 86_400.0


@drift_app.command("report")
def report(
    window: Annotated[
        str | None,
        typer.Option(help="Window length: 90s, 30m, 1h, 1d; default SETLIST_DRIFT_WINDOW_S."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(help="End of the current window, ISO 8601 (UTC if naive); default: newest."),
    ] = None,
    out: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("drift-report.html"),
    version: Annotated[
        str, typer.Option(help="Registered version or alias whose users, items, vectors count.")
    ] = "champion",
) -> None:
    """Compare the latest window of events with the one before it (data drift: activity, item
    popularity, new users and items, user vectors; performance drift: listen-through), write a
    self-contained HTML report with plots, and log it to MLflow.

    Examples: setlist drift report; setlist drift report --window 30m --end 2025-03-01T12:00
    """
    from setlist.events.store import open_store
    from setlist.monitor.drift import check_drift, windows
    from setlist.monitor.drift_report import write_html
    from setlist.registry import Registry, RegistryConfig

    settings = settings_with()
    config = settings.drift()
    if window is not None:
        config = dataclasses.replace(config, window_s=parse_window(window))
    end_us = parse_end(end) if end is not None else None
    with stages(4) as say, tempfile.TemporaryDirectory(prefix="setlist-drift-") as tmp:
        with open_store(settings.events().store_url) as store:
            events = store.frame()
        if events.height == 0:
            raise DataError(f"no events in the event store {store.url}", field="events_store_url")
        say(f"{events.height:,} events read")
        registry = Registry(RegistryConfig.from_settings(settings))
        served, model = _served(registry, version, Path(tmp))
        say(f"model: {served}")
        if end_us is None:
            end_us = int(events.get_column("ts_us").max()) + 1  # type: ignore[arg-type]
        width = int(round(config.window_s * 1e6))
        reference, current = windows(events, config.window_s, end_us)
        spans = ((end_us - 2 * width, end_us - width), (end_us - width, end_us))
        result = check_drift(reference, current, config, spans=spans, **_known(model))
        path = write_html(result, reference, current, out)
        say(f"report written to {path}")
        run_id = registry.log_run(
            "drift-report",
            params={"window_s": config.window_s, "end": _iso(end_us), "version": served},
            metrics={f"drift.{name}": value for name, value in result.scores().items()},
            tags={
                "setlist.kind": "drift_report",
                "drift.detected": str(result.drifted).lower(),
                "drift.outcome": result.outcome,
                "drift.reason": result.reason(),
            },
            artifacts=[path],
        )
        say("logged to MLflow")
    _print(result, served, path, run_id)


def parse_window(text: str) -> float:
    """``"1h"`` -> 3600.0 (s, m, min, h, d; a bare number is seconds)."""
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(
            f"--window {text!r} is not a duration; use e.g. 90s, 30m, 1h or 1d", field="window"
        )
    seconds = float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
    if not 1.0 <= seconds <= MAX_WINDOW_S:
        raise ConfigError(
            f"--window {text!r} is {seconds:g} s; accepted range is 1 s to 366 days", field="window"
        )
    return seconds


def parse_end(text: str) -> int:
    """An ISO 8601 time (UTC when naive) as microseconds since the epoch."""
    from setlist.events.store.base import to_us

    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"--end {text!r} is not an ISO 8601 time; use e.g. 2025-03-01T12:00:00Z", field="end"
        ) from None
    return to_us(value if value.tzinfo is not None else value.replace(tzinfo=UTC))


def _served(registry: Any, version: str, folder: Path) -> tuple[str, Any]:
    """(description, bundle) of the version whose users and items are known; no champion is
    not an error (the checks that need a model say so), an unknown explicit version is."""
    from setlist.bundle import ModelBundle
    from setlist.registry import CHAMPION

    if version == CHAMPION and registry.champion() is None:
        return "none (no champion registered)", None
    mv = registry.get(version)
    return f"v{mv.version}", ModelBundle.load(registry.download(mv.version, folder))


def _known(bundle: Any) -> dict[str, Any]:
    if bundle is None:
        return {}
    vectors = bundle.model.vectors()
    return {
        "known_users": set(bundle.users.ids.tolist()),
        "known_items": set(bundle.items.ids.tolist()),
        "item_vectors": None if vectors is None else (bundle.items.ids.tolist(), vectors[1]),
    }


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat(timespec="seconds")


def _print(result: Any, served: str, path: Path, run_id: str) -> None:
    ref, cur = result.reference, result.current
    console.print(
        f"current window {_iso(cur.start_us)} to {_iso(cur.end_us)}: {cur.events:,} events, "
        f"{cur.engagement:,} engagement; reference: {ref.events:,} events, "
        f"{ref.engagement:,} engagement; model {served}"
    )
    table = Table("check", "kind", "statistic", "threshold", "p", "drift", "detail", title="drift")
    for c in result.checks:
        p = "-" if c.p_value is None else f"{c.p_value:.3g}"
        mark = "[red]DRIFT[/red]" if c.drifted else "no"
        table.add_row(c.name, c.kind, f"{c.statistic:.4g}", f"{c.threshold:g}", p, mark, c.detail)
    console.print(table)
    colour = "red" if result.drifted else "green"
    console.print(f"[{colour}]{result.outcome}[/{colour}]: {result.reason()}")
    console.print(f"report: {path}; MLflow run {run_id}")
