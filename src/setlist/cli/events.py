"""`setlist simulate`, `setlist evaluate-policy`, and the events side of `train --with-events`."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from setlist.cli.common import DatasetOpt, app, console, settings_with, sources, stages
from setlist.config import Settings
from setlist.data.schema import Dataset
from setlist.errors import ConfigError


def merge_stored_events(settings: Settings, dataset: Dataset) -> Dataset:
    """The dataset with the event store's events merged in (weights: docs/events.md)."""
    from setlist.events.store import open_store
    from setlist.events.training import merge_events

    with open_store(settings.events().store_url) as store:
        frame = store.frame()
    merged, report = merge_events(dataset, frame)
    console.print(
        f"events: {report.events:,} read, {report.weighted:,} weighted, "
        f"{report.pairs_added:,} new pairs, {report.pairs_disliked:,} removed by dislikes, "
        f"{report.pairs_dropped:,} dropped by skips; rows {report.rows_before:,} -> "
        f"{report.rows_after:,}"
    )
    return merged


@app.command()
def simulate(
    users: Annotated[int, typer.Option(min=1, help="Listeners to draw from the world.")] = 100,
    rate: Annotated[float, typer.Option(min=0.01, max=1000.0, help="Requests per second.")] = 10.0,
    duration: Annotated[float, typer.Option(min=0.1, max=3600.0, help="Seconds to run.")] = 10.0,
    k: Annotated[int, typer.Option(min=1, max=100, help="Items per request.")] = 10,
    url: Annotated[str | None, typer.Option(help="Service base URL (loopback only).")] = None,
    dataset: DatasetOpt = None,
    seed: Annotated[int, typer.Option(help="Seed of the listeners' choices.")] = 0,
) -> None:
    """Synthetic listeners with hidden tastes ask the running service for recommendations and
    send back impressions, listens, likes and skips over HTTP.

    The dataset must be the synthetic world the served model was trained on.
    Example: setlist demo --no-serve -d synthetic:small; setlist serve & setlist simulate
    -d synthetic:small --users 200 --rate 20 --duration 60
    """
    from setlist.pipeline import ingest
    from setlist.simulate import ListenerModel, SimulationConfig, latency_summary, run_http

    settings = settings_with(dataset=dataset)
    base = url or f"http://{settings.host}:{settings.port}"
    key = settings.api_key.get_secret_value() if settings.api_key else None
    config = SimulationConfig(
        base, users=users, rate=rate, duration_s=duration, k=k, seed=seed, api_key=key
    )
    world, _ = ingest(settings.dataset, sources(settings))
    listeners = ListenerModel.from_world(world)
    with stages(1) as say:
        report = run_http(config, listeners)
        say("done")
    table = Table("figure", "value", title=f"simulation against {base}")
    rows: list[tuple[str, Any]] = [
        ("requests", report.requests),
        ("achieved rate /s", report.requests / max(report.elapsed_s, 1e-9)),
        ("events sent", report.events_sent),
        ("events acknowledged", report.events_acknowledged),
        ("listen rate per item shown", report.listen_rate),
        *[(f"listen rate, {s}", report.listened[s] / n) for s, n in report.shown.items() if n],
        *[(f"latency {name}", value) for name, value in latency_summary(report).items()],
        *[(f"errors: {name}", n) for name, n in report.errors.items()],
    ]
    for name, value in rows:
        table.add_row(name, f"{value:,.4g}" if isinstance(value, float) else f"{value:,}")
    console.print(table)


@app.command("evaluate-policy")
def evaluate_policy(
    candidate: Annotated[
        str, typer.Option(help="Registered version or alias of the candidate.")
    ] = "champion",
    bundle: Annotated[
        Path | None, typer.Option(help="A bundle folder instead of a registered version.")
    ] = None,
    k: Annotated[int, typer.Option(min=1, max=1000, help="Slate size of the candidate.")] = 10,
    window: Annotated[float, typer.Option(min=1.0, help="Seconds after an impression.")] = 3600.0,
    bootstrap: Annotated[int, typer.Option(min=10, max=100_000)] = 500,
    alpha: Annotated[float, typer.Option(min=0.001, max=0.5, help="1 - confidence.")] = 0.05,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
) -> None:
    """Estimate a candidate model's listen rate from the logged impressions (IPS, SNIPS and
    doubly robust, with bootstrap intervals), next to the logging policy's own rate.

    Examples: setlist evaluate-policy --candidate 3; setlist evaluate-policy --bundle ./bundle
    """
    from setlist.evaluate.counterfactual import (
        candidate_slates,
        estimate,
        from_event_frame,
        item_reward_model,
    )
    from setlist.events.store import open_store

    settings = settings_with()
    with stages(3) as say:
        with open_store(settings.events().store_url) as store:
            log = from_event_frame(store.frame(), window)
        if log.logged.n_requests == 0:
            raise ConfigError(
                f"no impressions with a propensity in {store.url}: serve with "
                "SETLIST_EXPLORE_MODE=epsilon (or plackett_luce) and log impressions first"
            )
        say(f"{log.logged.n_requests:,} logged requests")
        model = _load_bundle(settings, candidate, bundle)
        say("candidate loaded")
        depth = k + min(500, max((len(h) for h in log.heard), default=0))
        ranked = ranked_by_user(model, sorted(set(log.request_users)), depth)
        codes, slates = candidate_slates(ranked, log, k)
        q = item_reward_model(log.logged, len(codes))
        result = estimate(log.logged, slates, q, bootstrap=bootstrap, alpha=alpha, seed=seed)
        say("estimated")
    _print_estimates(result, log.without_propensity, 1 - alpha)


def _load_bundle(settings: Settings, candidate: str, folder: Path | None) -> Any:
    from setlist.bundle import ModelBundle

    if folder is not None:
        return ModelBundle.load(folder)
    from setlist.registry import Registry, RegistryConfig

    registry = Registry(RegistryConfig.from_settings(settings))
    with tempfile.TemporaryDirectory(prefix="setlist-candidate-") as tmp:
        return ModelBundle.load(registry.download(candidate, Path(tmp)))


def ranked_by_user(bundle: Any, users: list[str], depth: int) -> dict[str, list[str]]:
    """The candidate's ranking per user, ``depth`` long (popular items for users it never saw)."""
    import numpy as np

    ids = bundle.items.ids
    popular = [str(ids[r]) for r in np.argsort(-bundle.popularity, kind="stable")[:depth]]
    out = {user: popular for user in users}
    known = [u for u in users if u in bundle.users]
    for start in range(0, len(known), 1024):
        part = known[start : start + 1024]
        rows = np.array([bundle.users.get(u) for u in part], dtype=np.int64)
        top = bundle.model.recommend(rows, bundle.seen[rows], k=depth)[0]
        for user, row in zip(part, top.tolist(), strict=True):
            out[user] = [str(ids[r]) for r in row if r >= 0]
    return out


def _print_estimates(result: Any, without_propensity: int, level: float) -> None:
    table = Table("estimator", "listen rate", f"{level:.0%} interval", title="candidate policy")
    for e in result.estimates.values():
        table.add_row(e.name.upper(), f"{e.value:.4f}", f"[{e.low:.4f}, {e.high:.4f}]")
    logged = result.logged
    table.add_row(
        "logging policy (observed)",
        f"{logged.value:.4f}",
        f"[{logged.low:.4f}, {logged.high:.4f}]",
    )
    console.print(table)
    console.print(
        f"{result.n_requests:,} requests, {result.n_impressions:,} impressions, "
        f"{result.matched:,} matching the candidate, largest weight {result.max_weight:,.1f}"
        + (
            f"; {without_propensity:,} impressions without propensity skipped"
            if without_propensity
            else ""
        )
    )
