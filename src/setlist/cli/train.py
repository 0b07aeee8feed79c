"""`setlist train`, `evaluate`, `models list`, `serve` and `demo`."""

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


def _model_specs(models: str, settings: Settings) -> list[tuple[str, dict[str, Any]]]:
    from setlist.models import model_class

    specs: list[tuple[str, dict[str, Any]]] = []
    for kind in [m.strip() for m in models.split(",") if m.strip()]:
        model_class(kind)  # unknown names fail here, before any work
        params: dict[str, Any] = {}
        if kind == "als":
            params = {
                "factors": settings.factors,
                "iterations": settings.iterations,
                "regularization": settings.regularization,
                "seed": settings.seed,
            }
        specs.append((kind, params))
    if not specs:
        raise typer.BadParameter("--models names no model")
    return specs


def _train(
    settings: Settings,
    source: str,
    models: str,
    test: Path | None,
    register: bool,
    on_bad_rows: str = "fail",
) -> Any:
    from setlist.pipeline import ingest, prepare, run

    specs = _model_specs(models, settings)
    registry = None
    with stages(3 + 3 * len(specs)) as say:
        say(f"loading {source}")
        dataset, report = ingest(
            source,
            sources(settings),
            on_bad_rows=check_bad_rows(on_bad_rows),
            quarantine_dir=settings.home / "quarantine",
        )
        fixed = None
        if test is not None:
            fixed = ingest(str(test), sources(settings))[0].interactions
        say("cleaning and splitting")
        prepared = prepare(dataset, report, settings.clean(), settings.split(), fixed)
        if register:
            from setlist.registry import Registry, RegistryConfig

            registry = Registry(RegistryConfig.from_settings(settings))
        say("training")
        result = run(prepared, specs, settings.weights(), registry, say)
    _print_result(result)
    return result


def _print_result(result: Any) -> None:
    p = result.prepared
    console.print(
        f"[bold]{p.dataset.name}[/bold]: {p.train.shape[0]:,} users x {p.train.shape[1]:,} items, "
        f"train {p.train.nnz:,} / test {p.test.nnz:,} ({p.split.strategy} split)"
    )
    table = Table(
        "model",
        "version",
        "NDCG@10",
        "P@10",
        "R@10",
        "MAP@10",
        "cov@10",
        "fit s",
        "champion",
        title="trained models",
    )
    for m in result.models:
        r = m.report.metrics
        table.add_row(
            m.kind,
            m.version.version if m.version else "-",
            *(
                f"{r[k]:.4f}"
                for k in ("ndcg@10", "precision@10", "recall@10", "map@10", "coverage@10")
            ),
            f"{m.fit_seconds:.1f}",
            "yes" if m.decision and m.decision.promoted else "no",
        )
    console.print(table)
    for m in result.models:
        if m.decision is not None:
            console.print(f"gate, {m.kind} v{m.decision.candidate.version}: {m.decision.reason}")


@app.command()
def train(
    dataset: DatasetOpt = None,
    models: Annotated[str, typer.Option(help="Comma-separated models.")] = "popularity,als",
    test: TestOpt = None,
    factors: Annotated[int | None, typer.Option(min=1, max=4096)] = None,
    iterations: Annotated[int | None, typer.Option(min=1, max=1000)] = None,
    regularization: Annotated[float | None, typer.Option(min=0.0)] = None,
    weighting: Annotated[str | None, typer.Option(help="none, linear, log1p or bm25")] = None,
    alpha: Annotated[float | None, typer.Option(min=0.0)] = None,
    on_bad_rows: BadRowsOpt = "fail",
    register: Annotated[bool, typer.Option(help="Log to MLflow and register.")] = True,
) -> None:
    """Train, evaluate and register models; the gate moves `champion` only to a better one.

    Examples: setlist train; setlist train -d plays.csv --test test.csv --models als --factors 64
    """
    settings = settings_with(
        dataset=dataset,
        factors=factors,
        iterations=iterations,
        regularization=regularization,
        weighting=weighting,
        alpha=alpha,
    )
    _train(settings, settings.dataset, models, test, register, on_bad_rows)


@app.command("evaluate")
def evaluate_cmd(
    version: Annotated[str, typer.Option(help="Version number or alias.")] = "champion",
    dataset: DatasetOpt = None,
    test: TestOpt = None,
) -> None:
    """Evaluate a registered model version on a dataset's held-out split or a fixed test file.

    Examples: setlist evaluate; setlist evaluate --version 2 --test my_test.csv
    """
    import tempfile

    from setlist.evaluate.protocol import evaluate
    from setlist.matrix import build_matrix
    from setlist.models.bundle import ModelBundle
    from setlist.pipeline import ingest, prepare
    from setlist.registry import Registry, RegistryConfig

    settings = settings_with(dataset=dataset)
    registry = Registry(RegistryConfig.from_settings(settings))
    with stages(3) as say, tempfile.TemporaryDirectory() as tmp:
        bundle = ModelBundle.load(registry.download(version, Path(tmp)))
        say(f"loaded version {version}")
        data, report = ingest(settings.dataset, sources(settings))
        fixed = ingest(str(test), sources(settings))[0].interactions if test else None
        prepared = prepare(data, report, settings.clean(), settings.split(), fixed)
        say("prepared test set")
        test_m = build_matrix(prepared.split.test, bundle.users, bundle.items)
        dropped = prepared.split.test.height - test_m.nnz
        result = evaluate(bundle.model, bundle.seen, test_m.csr)
        say("evaluated")
    table = Table("metric", "value", title=f"version {version} on {settings.dataset}")
    for key, value in result.metrics.items():
        table.add_row(key, f"{value:.4f}")
    console.print(table)
    if dropped:
        console.print(f"{dropped:,} test rows name users or items unknown to the model (skipped)")


@models_app.command("list")
def models_list() -> None:
    """List registered versions with their metrics and aliases."""
    from setlist.registry import Registry, RegistryConfig

    registry = Registry(RegistryConfig.from_settings(settings_with()))
    table = Table("version", "type", "aliases", "NDCG@10", "P@10", "created", title="versions")
    for v in registry.list_versions():
        table.add_row(
            v.version,
            v.model_type,
            ",".join(v.aliases),
            f"{v.metrics.get('ndcg@10', float('nan')):.4f}",
            f"{v.metrics.get('precision@10', float('nan')):.4f}",
            str(v.created_at),
        )
    console.print(table)


@app.command()
def demo(
    dataset: DatasetOpt = None,
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve afterwards.")] = True,
) -> None:
    """Fetch, validate, train popularity and ALS, evaluate, register, promote, then serve.

    Examples: setlist demo; setlist demo --no-serve -d synthetic:small
    """
    settings = settings_with(dataset=dataset)
    result = _train(settings, settings.dataset, "popularity,als", None, True)
    base = f"http://{settings.host}:{settings.port}"
    users = result.prepared.train.users
    sample = users.ids[0] if len(users) else "unknown"
    console.print(f"API docs:        {base}/docs")
    console.print(f"recommendations: {base}/v1/users/{sample}/recommendations?k=10")
    console.print(f"model:           {base}/v1/model    metrics: {base}/metrics")
    if serve_api:
        from setlist.cli.serve import serve_forever

        serve_forever(settings)
