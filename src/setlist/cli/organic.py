"""`setlist organic train`: the organic playlist ranker, trained, judged and kept as a version;
`setlist top-picks`: every listener's buddies and organic playlists into the table the API serves.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from setlist.cli.common import app, console, settings_with, sources, stages

organic_app = typer.Typer(help="Organic playlists: human-made playlists for a listener.")
app.add_typer(organic_app, name="organic", no_args_is_help=True)


@organic_app.command("train")
def train(
    heldout: Annotated[
        float, typer.Option(min=0.01, max=0.99, help="Share of each listener's artists held out.")
    ] = 0.2,
    test_listeners: Annotated[
        float, typer.Option(min=0.01, max=0.99, help="Share of listeners that only judge.")
    ] = 0.3,
    trees: Annotated[int, typer.Option(min=1, max=5000, help="LightGBM boosting rounds.")] = 200,
    seed: Annotated[int | None, typer.Option(help="Seed; default SETLIST_SEED.")] = None,
) -> None:
    """Train the LightGBM lambdarank ranker on HetRec Last.fm listeners x MPD playlists (through
    the mirror or the cache), judge it on a user-content split against the most-followed
    playlists and raw overlap, log the run to MLflow and save it under SETLIST_ORGANIC_DIR.

    Example: SETLIST_DATA_MIRROR=/work/shared/data setlist organic train
    """
    from setlist.index.organic_ranker import RankerConfig
    from setlist.offline.organic import OrganicConfig, load_inputs, save_result, train_organic
    from setlist.registry import Registry, RegistryConfig

    settings = settings_with()
    seed = settings.seed if seed is None else seed
    config = OrganicConfig(
        test_listeners=test_listeners,
        heldout=heldout,
        seed=seed,
        ranker=RankerConfig(n_estimators=trees, seed=seed),
    )
    with stages(4) as say:
        history, names, table = load_inputs(sources(settings))
        say(f"{history.shape[0]:,} listeners, {table.playlists.height:,} playlists read")
        result = train_organic(history, names, table, config)
        say(f"ranker trained; champion: {result.champion}")
        folder = save_result(result, settings.organic_path, config)
        say(f"saved to {folder}")
        registry = Registry(RegistryConfig.from_settings(settings))
        run_id = registry.log_run(
            "organic-train",
            params={
                "heldout": heldout,
                "test_listeners": test_listeners,
                "trees": trees,
                "seed": seed,
                "version": folder.name,
            },
            metrics={f"organic.{k}": v for k, v in result.metrics().items()},
            tags={"setlist.kind": "organic_train", "organic.champion": result.champion},
            artifacts=[folder / "meta.json"],
        )
        say("logged to MLflow")
    evaluation = result.evaluation
    out = Table(title=f"organic playlists @10 over {len(evaluation.users):,} test listeners")
    for column in ("source", "hit rate", "discovery recall", "novelty", "diversity"):
        out.add_column(column)
    for source in evaluation.values:
        out.add_row(
            source,
            *(
                f"{evaluation.mean(source, m):.4f}"
                for m in ("hit_rate", "discovery_recall", "novelty", "diversity")
            ),
        )
    console.print(out)
    for ref, c in evaluation.comparisons.items():
        console.print(f"ranker vs {ref}: hit rate {c.diff.mean:+.4f} (p={c.p_value:.2g})")
    console.print(
        f"listening linked to playlists: {result.figures['matched_share']:.1%}; "
        f"champion: {result.champion}; version {folder.name}; MLflow run {run_id}"
    )


@app.command("top-picks")
def top_picks(
    out: Annotated[
        Path | None, typer.Option(help="Parquet file; default SETLIST_TOP_PICKS_PATH.")
    ] = None,
    bundle: Annotated[
        Path | None, typer.Option(help="Artists bundle folder instead of the registry's.")
    ] = None,
    version: Annotated[str, typer.Option(help="Registry version or alias to use.")] = "champion",
    backend: Annotated[str, typer.Option(help="local (one process) or ray (Ray Data).")] = "local",
    cpus: Annotated[int, typer.Option(min=1, max=256, help="Ray CPUs (actors).")] = 2,
    k_buddies: Annotated[int, typer.Option(min=1, max=100, help="Buddies per listener.")] = 10,
    k_playlists: Annotated[int, typer.Option(min=1, max=50, help="Playlists per listener.")] = 10,
    serendipity: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="As the route's (its default 0.3).")
    ] = 0.3,
    train_if_missing: Annotated[
        bool, typer.Option(help="Train the organic ranker first when organic_dir has none.")
    ] = False,
) -> None:
    """Every listener's taste buddies and organic playlists into one Parquet table, which the
    API serves while fresh (SETLIST_TOP_PICKS_MAX_AGE_S); run weekly by a CronJob.

    Examples: setlist top-picks; setlist top-picks --backend ray --bundle ./bundle
    """
    if backend not in ("local", "ray"):
        raise typer.BadParameter(f"--backend must be local or ray, got {backend!r}")
    from setlist.errors import DataError
    from setlist.index.organic_store import latest_version
    from setlist.offline.top_picks import TopPicksConfig, top_picks_local, top_picks_ray

    settings = settings_with()
    folder = latest_version(settings.organic_path)
    if folder is None and train_if_missing:
        train(heldout=0.2, test_listeners=0.3, trees=200, seed=None)
        folder = latest_version(settings.organic_path)
    if folder is None:
        raise DataError(
            f"no organic ranker under organic_dir {settings.organic_path}: run `setlist organic "
            "train` (or pass --train-if-missing)",
            field="organic_dir",
        )
    config = TopPicksConfig(k_buddies, k_playlists, serendipity)
    path = out or settings.top_picks_file
    with tempfile.TemporaryDirectory(prefix="setlist-top-picks-") as tmp:
        bundle_dir = bundle or _download(settings, version, Path(tmp))
        if backend == "ray":
            result = top_picks_ray(bundle_dir, folder, path, config, cpus)
        else:
            result = top_picks_local(bundle_dir, folder, path, config)
    console.print(
        f"{result.users:,} listeners, {result.rows:,} rows in {result.seconds:.1f} s "
        f"(organic version {result.version}) -> {result.path}"
    )


def _download(settings: Any, version: str, dest: Path) -> Path:
    from setlist.registry import Registry, RegistryConfig

    return Registry(RegistryConfig.from_settings(settings)).download(version, dest)
