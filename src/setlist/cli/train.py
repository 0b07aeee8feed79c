"""`setlist train`, `evaluate`, `models list` and `demo`.

Model parameters come from ``--param kind.name=value`` (repeatable; e.g. ``--param knn.k=100
--param ease.l2=300``); the ALS options ``--factors`` / ``--iterations`` / ``--regularization``
remain as shorthands. Every parameter is checked before any data is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from setlist.cli.common import (
    BadRowsOpt,
    DatasetOpt,
    TestOpt,
    app,
    check_bad_rows,
    console,
    models_app,
    settings_with,
    sources,
    stages,
)
from setlist.config import Settings

ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        help="A model parameter, kind.name=value (repeatable), e.g. knn.k=100, ease.l2=300.",
    ),
]
MinUserItemsOpt = Annotated[
    int | None, typer.Option(min=1, help="k-core: keep users with at least this many items.")
]
MinItemUsersOpt = Annotated[
    int | None,
    typer.Option(min=1, help="k-core: keep items with at least this many users (1 = all)."),
]
TestFractionOpt = Annotated[
    float | None, typer.Option(min=0.01, max=0.99, help="Per-user test share of the split.")
]
SeedOpt = Annotated[int | None, typer.Option(help="Seed of the split and the models.")]


def model_specs(models: str, params: list[str] | None, settings: Settings) -> list[Any]:
    """Specs for ``--models`` and ``--param``; unknown names or bad values fail here."""
    from setlist.models import model_class
    from setlist.models.specs import build_specs, parse_kinds, parse_overrides

    kinds = parse_kinds(models)
    # Each kind names its own defaults (ALS's size comes from the settings).
    defaults = {kind: model_class(kind).defaults(settings) for kind in kinds}
    return build_specs(kinds, parse_overrides(params or []), settings.weights(), defaults)


def load_prepared(
    settings: Settings,
    source: str,
    test: Path | None,
    on_bad_rows: str,
    say: Any,
    with_events: bool = False,
) -> Any:
    """Ingest, validate, clean and split (the shared first stages of train/tune/report)."""
    from setlist.pipeline import ingest, prepare

    say(f"loading {source}")
    dataset, report = ingest(
        source,
        sources(settings),
        on_bad_rows=check_bad_rows(on_bad_rows),
        quarantine_dir=settings.home / "quarantine",
    )
    if with_events:
        from setlist.cli.events import merge_stored_events

        dataset = merge_stored_events(settings, dataset)
    fixed = ingest(str(test), sources(settings))[0].interactions if test is not None else None
    say("cleaning and splitting")
    return prepare(dataset, report, settings.clean(), settings.split(), fixed)


def _train(
    settings: Settings,
    source: str,
    models: str,
    test: Path | None,
    register: bool,
    on_bad_rows: str = "fail",
    params: list[str] | None = None,
    with_events: bool = False,
) -> Any:
    from setlist.pipeline import run

    specs = model_specs(models, params, settings)
    check_bad_rows(on_bad_rows)
    registry = None
    with stages(3 + 3 * len(specs)) as say:
        prepared = load_prepared(settings, source, test, on_bad_rows, say, with_events)
        if register:
            from setlist.registry import Registry, RegistryConfig

            registry = Registry(RegistryConfig.from_settings(settings))
        say("training")
        result = run(prepared, specs, registry, say, index_config=settings.index())
    print_result(result)
    return result


def print_result(result: Any) -> None:
    p = result.prepared
    console.print(
        f"[bold]{p.dataset.name}[/bold]: {p.train.shape[0]:,} users x {p.train.shape[1]:,} items, "
        f"train {p.train.nnz:,} / test {p.test.nnz:,} ({p.split.strategy} split)"
    )
    table = Table(
        "model", "version", "NDCG@10", "P@10", "R@10", "MAP@10", "cov@10", "fit s", "peak MiB",
        "champion", title="trained models",
    )  # fmt: skip
    marks = champion_marks([bool(m.decision and m.decision.promoted) for m in result.models])
    for m, mark in zip(result.models, marks, strict=True):
        r = m.report.metrics
        table.add_row(
            m.kind,
            m.version.version if m.version else "-",
            *(
                f"{r[k]:.4f}"
                for k in ("ndcg@10", "precision@10", "recall@10", "map@10", "coverage@10")
            ),
            f"{m.usage.seconds:.1f}",
            f"{m.usage.peak_rss_mb:,.0f}",
            mark,
        )
    console.print(table)
    for m in result.models:
        if m.decision is not None:
            console.print(f"gate, {m.kind} v{m.decision.candidate.version}: {m.decision.reason}")


def champion_marks(promoted: list[bool]) -> list[str]:
    """The champion column of a run's table, models in the order the gate saw them: ``yes``
    only for the last one promoted (it holds the alias now), ``replaced`` for one promoted and
    then beaten in the same run, ``no`` for the rest."""
    last = max((i for i, p in enumerate(promoted) if p), default=-1)
    return ["yes" if i == last else "replaced" if p else "no" for i, p in enumerate(promoted)]


def first_user(ids: Any) -> str:
    """The listener a demo points at: the lowest id, numerically where ids are numbers (the
    matrix keeps ids sorted as text, so its first row of HetRec is user 10, not 2)."""
    values = [str(u) for u in ids]
    if not values:
        return "unknown"
    return min(values, key=lambda u: (0, int(u), u) if u.isdigit() else (1, 0, u))


@app.command()
def train(
    dataset: DatasetOpt = None,
    models: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated models (default popularity,als; for playlists "
            "popularity,knn,blend)."
        ),
    ] = None,
    test: TestOpt = None,
    param: ParamOpt = None,
    factors: Annotated[int | None, typer.Option(min=1, max=4096)] = None,
    iterations: Annotated[int | None, typer.Option(min=1, max=1000)] = None,
    regularization: Annotated[float | None, typer.Option(min=0.0)] = None,
    weighting: Annotated[
        str | None, typer.Option(help="none, linear, log1p or bm25 (ALS / popularity input)")
    ] = None,
    alpha: Annotated[float | None, typer.Option(min=0.0)] = None,
    min_user_items: MinUserItemsOpt = None,
    min_item_users: MinItemUsersOpt = None,
    test_fraction: TestFractionOpt = None,
    seed: SeedOpt = None,
    on_bad_rows: BadRowsOpt = "fail",
    register: Annotated[bool, typer.Option(help="Log to MLflow and register.")] = True,
    with_events: Annotated[
        bool, typer.Option("--with-events", help="Merge stored feedback events (docs/events.md).")
    ] = False,
) -> None:
    """Train, evaluate and register models; the gate moves `champion` only to a significantly
    better one (paired test on the same users).

    Examples: setlist train; setlist train --models ease,knn --param ease.l2=300
    --param knn.k=100 --min-item-users 1; setlist train -d plays.csv --test test.csv
    """
    settings = settings_with(
        dataset=dataset,
        factors=factors,
        iterations=iterations,
        regularization=regularization,
        weighting=_weighting(weighting),
        alpha=alpha,
        min_user_items=min_user_items,
        min_item_users=min_item_users,
        test_fraction=test_fraction,
        seed=seed,
    )
    from setlist.data.playlists import is_playlist_source

    if is_playlist_source(settings.dataset):
        train_playlists(settings, settings.dataset, models, register, on_bad_rows, param)
        return
    _train(
        settings, settings.dataset, models or "popularity,als", test, register, on_bad_rows,
        param, with_events,
    )  # fmt: skip


def train_playlists(
    settings: Settings,
    source: str,
    models: str | None,
    register: bool,
    on_bad_rows: str = "fail",
    params: list[str] | None = None,
) -> Any:
    """The playlist pipeline (:mod:`setlist.pipeline_playlists`) for a playlist source."""
    from setlist.data.playlists import load_playlist_source
    from setlist.models.specs import parse_kinds, parse_overrides
    from setlist.pipeline_playlists import (
        DEFAULT_MODELS,
        playlist_specs,
        prepare_playlists,
        run_playlists,
        tracks_registry_config,
    )

    kinds = parse_kinds(models or DEFAULT_MODELS)
    specs = playlist_specs(kinds, parse_overrides(params or []))
    with stages(3 + 2 * len(specs) + (2 if register else 0)) as say:
        say(f"loading {source}")
        dataset, report = load_playlist_source(
            source,
            sources(settings),
            on_bad_rows=check_bad_rows(on_bad_rows),
            quarantine_dir=settings.home / "quarantine",
        )
        say("holding out playlists")
        prepared = prepare_playlists(
            dataset, report, holdout=settings.playlist_holdout, seed=settings.seed
        )
        registry = None
        if register:
            from setlist.registry import Registry

            registry = Registry(tracks_registry_config(settings))
        result = run_playlists(prepared, specs, registry, say)
    print_playlist_result(result)
    return result


def print_playlist_result(result: Any) -> None:
    p = result.prepared
    console.print(
        f"[bold]{p.dataset.name}[/bold]: {p.train.shape[0]:,} training playlists x "
        f"{p.train.shape[1]:,} tracks; {len(p.challenge.cases):,} held-out test playlists "
        f"({len(p.challenge.skipped)} too short)"
    )
    summary = Table(
        "model", "R-prec", "NDCG", "clicks", "fit s", "peak MiB", "version", "champion",
        title="candidates (all test playlists)",
    )  # fmt: skip
    marks = champion_marks([bool(c.decision and c.decision.promoted) for c in result.candidates])
    for c, mark in zip(result.candidates, marks, strict=True):
        m = c.metrics()
        summary.add_row(
            c.kind,
            f"{m['r_precision']:.4f}",
            f"{m['ndcg']:.4f}",
            f"{m['clicks']:.2f}",
            f"{c.usage.seconds:.1f}",
            f"{c.usage.peak_rss_mb:,.0f}",
            c.version.version if c.version else "-",
            mark,
        )
    console.print(summary)
    if result.best is not None:
        table = Table(
            "category", "playlists", "R-prec [95% CI]", "NDCG [95% CI]", "clicks [95% CI]",
            title=f"{result.best.kind} per category",
        )  # fmt: skip
        for row in result.best.report.table.iter_rows(named=True):
            table.add_row(
                row["category"],
                str(row["n_playlists"]),
                *(
                    f"{row[m]:.4f} [{row[m + '_low']:.4f}, {row[m + '_high']:.4f}]"
                    for m in ("r_precision", "ndcg", "clicks")
                ),
            )
        console.print(table)
        if result.best.decision is not None:
            d = result.best.decision
            console.print(f"gate, {result.best.kind} v{d.candidate.version}: {d.reason}")


def _weighting(value: str | None) -> str | None:
    if value is not None and value not in ("none", "linear", "log1p", "bm25"):
        raise typer.BadParameter(f"--weighting must be none, linear, log1p or bm25, got {value!r}")
    return value


@app.command("evaluate")
def evaluate_cmd(
    version: Annotated[str, typer.Option(help="Version number or alias.")] = "champion",
    dataset: DatasetOpt = None,
    test: TestOpt = None,
    min_user_items: MinUserItemsOpt = None,
    min_item_users: MinItemUsersOpt = None,
) -> None:
    """Evaluate a registered model version on a dataset's held-out split or a fixed test file.

    Users the version never saw are folded in from their training history.
    Examples: setlist evaluate; setlist evaluate --version 2 --test my_test.csv
    """
    import tempfile

    import numpy as np

    from setlist.bundle import ModelBundle
    from setlist.evaluate.metrics import ranking_metrics
    from setlist.evaluate.protocol import relevant_items
    from setlist.pipeline import bundle_ranked
    from setlist.registry import Registry, RegistryConfig

    settings = settings_with(
        dataset=dataset, min_user_items=min_user_items, min_item_users=min_item_users
    )
    from setlist.data.playlists import is_playlist_source

    if is_playlist_source(settings.dataset):
        evaluate_playlists(settings, version)
        return
    registry = Registry(RegistryConfig.from_settings(settings))
    with stages(4) as say, tempfile.TemporaryDirectory() as tmp:
        bundle = ModelBundle.load(registry.download(version, Path(tmp)))
        say(f"loaded version {version}")
        prepared = load_prepared(settings, settings.dataset, test, "fail", say)
        relevant = relevant_items(prepared.train.csr, prepared.test.csr)
        rows = np.flatnonzero(np.diff(relevant.indptr)).astype(np.int64)
        ranked = bundle_ranked(bundle, prepared.train, rows, 20)
        metrics = ranking_metrics(ranked, relevant[rows], (10, 20))
        say("evaluated")
    table = Table(
        "metric", "value", title=f"version {version} on {settings.dataset} ({len(rows):,} users)"
    )
    for key, values in sorted(metrics.items()):
        table.add_row(key, f"{values.mean():.4f}")
    console.print(table)


def evaluate_playlists(settings: Settings, version: str) -> Any:
    """A registered tracks version on the held-out playlists of a playlist source (the
    pipeline's split: SETLIST_PLAYLIST_HOLDOUT, SETLIST_SEED), per category."""
    import tempfile

    from setlist.bundle import ModelBundle
    from setlist.data.playlists import load_playlist_source
    from setlist.pipeline_playlists import (
        bundle_report,
        prepare_playlists,
        tracks_registry_config,
    )
    from setlist.registry import Registry

    registry = Registry(tracks_registry_config(settings))
    with stages(3) as say, tempfile.TemporaryDirectory() as tmp:
        bundle = ModelBundle.load(registry.download(version, Path(tmp)))
        say(f"loaded tracks version {version}")
        dataset, report = load_playlist_source(settings.dataset, sources(settings))
        prepared = prepare_playlists(
            dataset, report, holdout=settings.playlist_holdout, seed=settings.seed
        )
        say("held out playlists")
        result = bundle_report(bundle, prepared)
        say("evaluated")
    table = Table(
        "category", "playlists", "R-prec [95% CI]", "NDCG [95% CI]", "clicks [95% CI]",
        title=f"tracks version {version} on {settings.dataset}",
    )  # fmt: skip
    for row in result.table.iter_rows(named=True):
        table.add_row(
            row["category"],
            str(row["n_playlists"]),
            *(
                f"{row[m]:.4f} [{row[m + '_low']:.4f}, {row[m + '_high']:.4f}]"
                for m in ("r_precision", "ndcg", "clicks")
            ),
        )
    console.print(table)
    return result


@models_app.command("list")
def models_list() -> None:
    """List registered versions with their metrics, aliases and gate decisions."""
    from setlist.registry import Registry, RegistryConfig
    from setlist.registry.gate import gate_summary

    registry = Registry(RegistryConfig.from_settings(settings_with()))
    table = Table(
        "version", "type", "aliases", "NDCG@10", "P@10", "fit s", "peak MiB", "gate", "p-value",
        "95% CI of diff", "created", title="versions",
    )  # fmt: skip
    for v in registry.list_versions():
        decision, p_value, interval = gate_summary(v.tags)
        table.add_row(
            v.version,
            v.model_type,
            ",".join(v.aliases),
            f"{v.metrics.get('ndcg@10', float('nan')):.4f}",
            f"{v.metrics.get('precision@10', float('nan')):.4f}",
            f"{v.metrics.get('fit_seconds', float('nan')):.1f}",
            f"{v.metrics.get('fit_peak_rss_mb', float('nan')):,.0f}",
            decision,
            p_value,
            interval,
            v.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)


@app.command()
def demo(
    dataset: DatasetOpt = None,
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve afterwards.")] = True,
    tracks: Annotated[
        bool, typer.Option("--tracks/--no-tracks", help="Also train the tracks catalogue.")
    ] = True,
    organic: Annotated[
        bool,
        typer.Option(
            "--organic/--no-organic",
            help="Also train the organic playlist ranker (HetRec x the MPD subset, mirrored).",
        ),
    ] = True,
) -> None:
    """Fetch, validate, train popularity and ALS, evaluate, register, promote, then serve.

    With --tracks (the default) the tracks catalogue is trained too, through the playlist
    pipeline: on spotify-mpd where the mirror has it, else on a small synthetic MPD written
    under the home folder (popularity and the blend; the references are left to the
    benchmark to keep the demo short).
    Examples: setlist demo; setlist demo --no-serve -d synthetic:small
    """
    settings = settings_with(dataset=dataset)
    result = _train(settings, settings.dataset, "popularity,als", None, True)
    if tracks:
        _demo_tracks(settings)
    organic = organic and _demo_organic(settings)
    base = f"http://{settings.host}:{settings.port}"
    sample = first_user(result.prepared.train.users.ids.tolist())
    console.print(f"API docs:        {base}/docs")
    console.print(f"recommendations: {base}/v1/users/{sample}/recommendations?k=10")
    console.print(f"taste buddies:   {base}/v1/users/{sample}/buddies")
    if organic:
        console.print(f"playlists:       {base}/v1/users/{sample}/playlists?k=10")
    console.print(f"model:           {base}/v1/model    metrics: {base}/metrics")
    if serve_api:
        from setlist.cli.serve import serve_forever

        serve_forever(settings)


def _demo_organic(settings: Settings) -> bool:
    """The organic playlist ranker for the demo, where it can be real: HetRec listeners and the
    MPD subset both in the mirror (synthetic artists and playlists would link to nothing)."""
    mirror = settings.data_mirror
    if (
        settings.dataset != "hetrec-lastfm-2k"
        or mirror is None
        or not (mirror / "spotify-mpd-subset").is_dir()
    ):
        console.print("organic playlists: skipped (needs HetRec and the MPD subset mirrored)")
        return False
    from setlist.cli.organic import train as organic_train

    console.print("organic playlists: HetRec listeners x the MPD subset")
    organic_train(heldout=0.2, test_listeners=0.3, trees=200, seed=None)
    return True


def _demo_tracks(settings: Settings) -> None:
    """The tracks catalogue for the demo: the real MPD subset if mirrored, else synthetic."""
    from setlist.pipeline_playlists import write_demo_slices

    mirror = settings.data_mirror
    if mirror is not None and (mirror / "spotify-mpd-subset").is_dir():
        source, demo_settings = "spotify-mpd", settings
    else:
        source = str(write_demo_slices(settings.home / "demo-mpd"))
        demo_settings = settings.model_copy(update={"playlist_holdout": 150})
    console.print(f"tracks catalogue from {source}")
    train_playlists(demo_settings, source, "popularity,blend", True)
