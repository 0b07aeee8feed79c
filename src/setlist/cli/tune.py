"""`setlist tune` (search models under a budget) and `setlist report` (HTML evaluation report)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from setlist.cli.common import (
    BadRowsOpt,
    DatasetOpt,
    RayAddressOpt,
    TestOpt,
    app,
    console,
    settings_with,
    stages,
)
from setlist.cli.common import ray_address as cluster
from setlist.cli.train import (
    MinItemUsersOpt,
    MinUserItemsOpt,
    ParamOpt,
    SeedOpt,
    TestFractionOpt,
    load_prepared,
    model_specs,
)


@app.command()
def tune(
    dataset: DatasetOpt = None,
    models: Annotated[
        str, typer.Option(help="Models to search, comma-separated; blend blends the best.")
    ] = "als,ease,knn,blend",
    budget: Annotated[str, typer.Option(help="Wall-clock budget: 90s, 15m, 1h.")] = "15m",
    backend: Annotated[str, typer.Option(help="optuna (in-process) or ray.")] = "optuna",
    test: TestOpt = None,
    param: ParamOpt = None,
    trials: Annotated[int | None, typer.Option(min=1, help="At most this many trials.")] = None,
    validation_fraction: Annotated[
        float, typer.Option(min=0.01, max=0.99, help="Share of training items for validation.")
    ] = 0.2,
    weighting: Annotated[
        str | None, typer.Option(help="Fix the ALS / popularity weighting instead of searching.")
    ] = None,
    min_user_items: MinUserItemsOpt = None,
    min_item_users: MinItemUsersOpt = None,
    test_fraction: TestFractionOpt = None,
    seed: SeedOpt = None,
    ray_address: RayAddressOpt = None,
    on_bad_rows: BadRowsOpt = "fail",
    register: Annotated[bool, typer.Option(help="Register the winner and gate it.")] = True,
) -> None:
    """Search models and parameters within a budget; register the best through the gate.

    Trials fit on part of the training split and are ranked on held-out validation items; the
    winner is refitted on the whole training split and evaluated on the test split.
    Example (protocol A): setlist tune -d hetrec-lastfm-2k --models als,ease,knn,blend
    --budget 15m --min-item-users 1
    """
    import time

    from setlist.config import WeightConfig
    from setlist.models import model_class
    from setlist.models.specs import parse_kinds, parse_overrides
    from setlist.tune.budget import parse_budget
    from setlist.tune.study import TuneConfig, check_budget, check_config, run_study

    started = time.monotonic()  # the budget covers reading the data too
    settings = settings_with(
        dataset=dataset,
        min_user_items=min_user_items,
        min_item_users=min_item_users,
        test_fraction=test_fraction,
        seed=seed,
    )
    from setlist.data.playlists import is_playlist_source

    if is_playlist_source(settings.dataset):
        _tune_playlists(settings, trials or 12, register, param)
        return
    kinds = parse_kinds(models)
    overrides = parse_overrides(param or [])
    tunable = [k for k in kinds if model_class(k).tunable]
    model_specs(",".join(tunable) or "popularity", param, settings)
    weights = None
    if weighting is not None:
        weights = WeightConfig(scheme=_scheme(weighting), alpha=settings.alpha)
    config = TuneConfig(
        kinds=tuple(kinds),
        budget_s=parse_budget(budget),
        backend=backend,
        max_trials=trials,
        seed=settings.seed,
        validation_fraction=validation_fraction,
        fixed=overrides,
        weights=weights,
        ray_address=cluster(ray_address),
    )
    check_config(config)
    with stages(4) as say:
        prepared = load_prepared(settings, settings.dataset, test, on_bad_rows, say)
        check_budget(config, prepared)  # before MLflow or any trial starts
        registry = _registry(settings) if register else None
        result = run_study(prepared, config, registry, say, started=started)
    _print_study(result)


def _scheme(value: str) -> Any:
    if value not in ("none", "linear", "log1p", "bm25"):
        raise typer.BadParameter(f"--weighting must be none, linear, log1p or bm25, got {value!r}")
    return value


def _registry(settings: Any) -> Any:
    from setlist.registry import Registry, RegistryConfig

    return Registry(RegistryConfig.from_settings(settings))


def _print_study(result: Any) -> None:
    done = [t for t in result.trials if t.state == "complete"]
    pruned = sum(t.state == "pruned" for t in result.trials)
    failed = sum(t.state == "failed" for t in result.trials)
    console.print(
        f"{len(result.trials)} trials ({len(done)} complete, {pruned} pruned, {failed} failed) "
        f"in {result.seconds:.0f}s"
    )
    table = Table("kind", "trials", "best validation NDCG@10", "fit s", "peak MiB", title="best")
    for kind in sorted({t.spec.kind for t in done}):
        mine = [t for t in done if t.spec.kind == kind]
        best = max(mine, key=lambda t: t.value)
        table.add_row(
            kind,
            str(len(mine)),
            f"{best.value:.4f}",
            f"{best.usage.seconds:.1f}",
            f"{best.usage.peak_rss_mb:,.0f}",
        )
    console.print(table)
    final = result.final
    m = final.report.metrics
    console.print(
        f"winner: {result.best_spec.kind} {result.best_spec.params} "
        f"(validation NDCG@10 {result.best_value:.4f})"
    )
    console.print(
        f"test: NDCG@10 {m['ndcg@10']:.4f}  P@10 {m['precision@10']:.4f}  "
        f"MAP@10 {m['map@10']:.4f}  R@10 {m['recall@10']:.4f}  "
        f"(refit {final.usage.seconds:.1f}s, peak {final.usage.peak_rss_mb:,.0f} MiB)"
    )
    if final.decision is not None:
        console.print(f"gate, v{final.decision.candidate.version}: {final.decision.reason}")


@app.command()
def report(
    dataset: DatasetOpt = None,
    models: Annotated[
        str, typer.Option(help="Models to fit and compare (playlists: popularity,knn,blend).")
    ] = "popularity,als,ease,knn",
    test: TestOpt = None,
    param: ParamOpt = None,
    out: Annotated[Path, typer.Option(help="HTML file to write.")] = Path("setlist-report.html"),
    activity: Annotated[
        str | None,
        typer.Option(
            help="Activity bounds 'a,b': cold <= a < light <= b < heavy (default terciles)."
        ),
    ] = None,
    min_user_items: MinUserItemsOpt = None,
    min_item_users: MinItemUsersOpt = None,
    test_fraction: TestFractionOpt = None,
    seed: SeedOpt = None,
    on_bad_rows: BadRowsOpt = "fail",
    log: Annotated[bool, typer.Option("--log/--no-log", help="Log the report to MLflow.")] = True,
) -> None:
    """Fit models on a split and write a self-contained HTML evaluation report.

    Example: setlist report -d hetrec-lastfm-2k --models popularity,als,ease,knn
    --param ease.l2=2000 --param ease.weighting=log1p --min-item-users 1 --out report.html
    """
    from setlist.tune.reporting import build_report

    settings = settings_with(
        dataset=dataset,
        min_user_items=min_user_items,
        min_item_users=min_item_users,
        test_fraction=test_fraction,
        seed=seed,
    )
    from setlist.data.playlists import is_playlist_source

    if is_playlist_source(settings.dataset):
        _playlist_report(settings, None if models == _REPORT_MODELS else models, param, out)
        return
    specs = model_specs(models, param, settings)
    bounds = _bounds(activity)
    with stages(3 + len(specs)) as say:
        prepared = load_prepared(settings, settings.dataset, test, on_bad_rows, say)
        text, entries = build_report(prepared, specs, bounds, say)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        say(f"wrote {out}")
    if log:
        _log_report(settings, prepared.dataset.name, out, entries)
    for e in entries:
        i = e.intervals["ndcg@10"]
        console.print(f"{e.name}: NDCG@10 {i.mean:.4f} [{i.low:.4f}, {i.high:.4f}]")
    console.print(f"report: {out.resolve()}")


_REPORT_MODELS = "popularity,als,ease,knn"


def _tune_playlists(settings: Any, trials: int, register: bool, param: list[str] | None) -> None:
    """``setlist tune`` on a playlist source: the blend's weight and the continuation's title
    and artist weights tuned on validation playlists drawn from the training playlists, then
    the tuned blend trained, evaluated on the test playlists and (with --register) gated."""
    from setlist.cli.common import sources
    from setlist.cli.train import print_playlist_result
    from setlist.data.playlists import load_playlist_source
    from setlist.models.specs import parse_overrides
    from setlist.pipeline_playlists import (
        playlist_specs,
        prepare_playlists,
        run_playlists,
        tracks_registry_config,
        tune_playlists,
    )

    overrides = parse_overrides(param or [])
    spec = playlist_specs(["blend"], overrides)[0]
    with stages(5 + trials) as say:
        say(f"loading {settings.dataset}")
        dataset, report = load_playlist_source(settings.dataset, sources(settings))
        prepared = prepare_playlists(
            dataset, report, holdout=settings.playlist_holdout, seed=settings.seed
        )
        tuning = tune_playlists(prepared, spec, trials=trials, progress=say)
        w = tuning.blend_weight
        tuned = playlist_specs(
            ["blend"], {"blend": {**overrides.get("blend", {}), "weights": [w, 1.0 - w]}}
        )
        registry = None
        if register:
            from setlist.registry import Registry

            registry = Registry(tracks_registry_config(settings))
        result = run_playlists(prepared, tuned, registry, say, tuning.config)
    console.print(
        f"tuned on validation playlists ({tuning.trials} trials): blend weight {w:.3f}, "
        f"{tuning.config}, validation R-precision {tuning.validation_r_precision:.4f}"
    )
    print_playlist_result(result)


def _playlist_report(settings: Any, models: str | None, param: list[str] | None, out: Path) -> None:
    """``setlist report`` on a playlist source: the challenge's per-category tables per model."""
    from setlist.cli.train import train_playlists
    from setlist.evaluate.report import render_challenge_html

    result = train_playlists(settings, settings.dataset, models, False, "fail", param)
    tables = {c.kind: c.report.table for c in result.candidates}
    p = result.prepared
    context = {
        "dataset": p.dataset.name,
        "training playlists": p.train.shape[0],
        "test playlists": len(p.challenge.cases),
        "seed": p.seed,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_challenge_html(tables, context), encoding="utf-8")
    console.print(f"report: {out.resolve()}")


def _bounds(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        low, high = (float(x) for x in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"--activity must be two numbers a,b; got {text!r}") from None
    if low > high:
        raise typer.BadParameter(f"--activity bounds must increase; got {text!r}")
    return low, high


def _log_report(settings: Any, name: str, path: Path, entries: list[Any]) -> None:
    from setlist.tune.tracking import StudyTracker

    tracker = StudyTracker(_registry(settings), f"report-{name}", {"dataset": name})
    metrics = {f"{e.name}.{k}": v for e in entries for k, v in e.metrics.items()}
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "report.html"
        copy.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
        tracker.finish(metrics, {"setlist.kind": "report"}, artifacts=Path(tmp))
