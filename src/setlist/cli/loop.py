"""`setlist loop`: the self-retraining worker; `setlist retrain`: one retraining now."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from setlist.cli.common import DatasetOpt, app, console, settings_with, sources
from setlist.config import Settings

if TYPE_CHECKING:
    from setlist.monitor.loop import Decision, Loop


def build_loop(settings: Settings, with_metrics: bool = False) -> Loop:
    """The loop over the configured store, registry and base dataset (loaded once, lazily)."""
    from setlist.cli.train import model_specs
    from setlist.events.store import open_store
    from setlist.monitor.loop import Loop, LoopContext
    from setlist.monitor.metrics import LoopMetrics
    from setlist.monitor.organic_loop import OrganicLoopConfig
    from setlist.monitor.retrain import RetrainConfig
    from setlist.pipeline import ingest
    from setlist.registry import Registry, RegistryConfig

    cache: dict[str, Any] = {}

    def base() -> Any:
        if "data" not in cache:
            cache["data"] = ingest(settings.dataset, sources(settings))
        return cache["data"]

    ctx = LoopContext(
        store=open_store(settings.events().store_url),
        registry=Registry(RegistryConfig.from_settings(settings)),
        base=base,
        default_spec=model_specs("als", None, settings)[0],
        retrain=RetrainConfig(
            settings.clean(), settings.split(), settings.index(), settings.loop_recent_test_fraction
        ),
        drift=settings.drift(),
        loop=settings.loop(),
        folder=settings.home / "loop",
        metrics=LoopMetrics() if with_metrics else None,
        organic=OrganicLoopConfig(settings.organic_path, settings.loop_organic_min_feedback),
    )
    return Loop(ctx)


def print_decision(d: Decision) -> None:
    table = Table("outcome", "trigger", "version", "MLflow run", title="loop decision")
    table.add_row(d.outcome, d.trigger or "-", d.version or "-", d.run_id or "-")
    console.print(table)
    console.print(d.reason)
    if d.drift is not None:
        checks = Table("check", "kind", "statistic", "threshold", "p", "drift", title="drift")
        for c in d.drift.checks:
            p = "-" if c.p_value is None else f"{c.p_value:.3g}"
            checks.add_row(
                c.name, c.kind, f"{c.statistic:.4g}", f"{c.threshold:.4g}", p,
                "yes" if c.drifted else "no",
            )  # fmt: skip
        console.print(checks)


@app.command()
def loop(
    interval: Annotated[
        float | None, typer.Option(min=0.01, help="Seconds between ticks (default: setting).")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Port of /metrics; 0: none.")
    ] = None,
    max_ticks: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many ticks (default: run on).")
    ] = None,
    dataset: DatasetOpt = None,
) -> None:
    """Watch the events for drift, retrain, gate, promote, and roll back on live figures.

    Runs until stopped (Ctrl-C) or --max-ticks. Each tick: probation check of a new
    champion, else drift between the champion's first window of traffic and the latest one,
    then schedule / drift triggers with a cool-down. Decisions are MLflow runs; the worker's
    Prometheus metrics are on http://127.0.0.1:PORT/metrics.

    Example: setlist loop --interval 60 --metrics-port 9101
    """
    settings = settings_with(dataset=dataset)
    port = settings.loop_metrics_port if metrics_port is None else metrics_port
    worker = build_loop(settings, with_metrics=port > 0)
    if worker.ctx.metrics is not None and port > 0:
        worker.ctx.metrics.serve(port, settings.host)
        console.print(f"loop metrics: http://{settings.host}:{port}/metrics")
    every = interval if interval is not None else settings.loop_interval_s
    ticks = 0
    try:
        while max_ticks is None or ticks < max_ticks:
            started = time.monotonic()
            decision = worker.tick()
            ticks += 1
            console.print(f"tick {ticks}: {decision.outcome}: {decision.reason}")
            if max_ticks is None or ticks < max_ticks:
                time.sleep(max(0.0, every - (time.monotonic() - started)))
    except KeyboardInterrupt:
        console.print("loop stopped")
    finally:
        worker.ctx.store.close()


@app.command()
def retrain(
    dataset: DatasetOpt = None,
    drill: Annotated[
        str | None,
        typer.Option(
            help="shuffle: train on shuffled data, a fire drill proving the gate refuses a "
            "worse model."
        ),
    ] = None,
) -> None:
    """Retrain once now on the base dataset plus the stored events, and gate the candidate.

    The family is the champion's (kind, parameters, weighting); the test set is a share of
    what listeners discovered in the latest window. The decision is an MLflow run.

    Examples: setlist retrain; setlist retrain --drill shuffle
    """
    if drill not in (None, "shuffle"):
        raise typer.BadParameter(f"--drill must be shuffle, got {drill!r}")
    from setlist.monitor.retrain import shuffle_items

    settings = settings_with(dataset=dataset)
    worker = build_loop(settings)
    try:
        transform = shuffle_items(settings.seed) if drill == "shuffle" else None
        trigger = "drill" if drill else "manual"
        decision = worker.retrain_now(trigger=trigger, transform=transform)
    finally:
        worker.ctx.store.close()
    print_decision(decision)
    if decision.outcome == "failed":
        raise typer.Exit(1)
