"""`setlist organic train`: the organic playlist ranker, trained, judged and kept as a version."""

from __future__ import annotations

from typing import Annotated

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
