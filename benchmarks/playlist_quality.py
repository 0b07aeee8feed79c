"""Playlist continuation quality on the MPD subset: references and the chosen model, one run.

    SETLIST_DATA_MIRROR=../shared/data OPENBLAS_NUM_THREADS=1 python -m benchmarks.playlist_quality

1. Held-out playlists (the pipeline's protocol: ``SETLIST_PLAYLIST_HOLDOUT`` = 500 playlists by
   pid, seed 0, the challenge's ten categories): R-precision and NDCG per model x category,
   fit seconds and peak memory per model, and the ratio of each model to the EASE reference.
   Models: the most popular tracks, item-kNN (cosine, binary, k=100), EASE on the 15k most
   frequent tracks (lambda 100), and the chosen ``blend`` (pipeline_playlists.PLAYLIST_DEFAULTS),
   each scored through the same :class:`~setlist.models.continuation.Continuer` (title model
   and artist back-off included) as the pipeline and the service. ``two_tower`` (defaults, the
   track's artist as its item feature) is measured too. ``PLAYLIST_KINDS=ease,two_tower`` limits
   the models (EASE, the reference, must stay).
2. Protocol P of docs/TARGETS.md: the chosen model and the EASE reference fitted on *every*
   subset playlist, tested on the playlists of ``spotify-mpd-sample/mpd.slice.0-999.first37.json``
   that are not in the subset (only a handful: the figures are anecdotes, not estimates),
   first N = 5, 10, 25 tracks given (no title), the rest the truth, 500 recommendations.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from setlist.data.playlists import read_playlists
from setlist.data.schema import PlaylistDataset
from setlist.evaluate.playlist_challenge import ChallengeCase, ChallengeReport, ChallengeSet
from setlist.evaluate.playlists import challenge_metrics
from setlist.models.continuation import ContinuationConfig, Continuer
from setlist.models.specs import ModelSpec, parse_overrides
from setlist.pipeline_playlists import (
    ALL,
    category_mean,
    continuer_for,
    evaluate_continuer,
    fit_candidate,
    playlist_specs,
    prepare_playlists,
    ranked_lists,
)

KEY = ("first_5", "first_10", "title_first_25")


def main() -> None:
    mirror = Path(os.environ.get("SETLIST_DATA_MIRROR", "../shared/data"))
    holdout = int(os.environ.get("SETLIST_PLAYLIST_HOLDOUT", "500"))
    dataset = read_playlists(mirror / "spotify-mpd-subset")[0]
    prepared = prepare_playlists(dataset, holdout=holdout, seed=0)
    config = ContinuationConfig()
    print(
        f"MPD subset: {prepared.train.shape[0]} training playlists x {prepared.train.shape[1]} "
        f"tracks, {len(prepared.challenge.cases)} test playlists {prepared.challenge.counts()}"
    )
    kinds = os.environ.get("PLAYLIST_KINDS", "popularity,knn,ease,two_tower,blend").split(",")
    specs = playlist_specs(kinds, parse_overrides(sys.argv[1:]))
    plain = ContinuationConfig(artist_weight=0.0)
    rows, reports = [], {}
    for spec in specs:
        model, usage = (
            fit_two_tower(spec, prepared)
            if spec.kind == "two_tower"
            else fit_candidate(spec, prepared)
        )
        for suffix, used in (("", plain), ("+artist", config)):
            report = evaluate_continuer(continuer_for(model, prepared, used), prepared)
            reports[spec.kind + suffix] = report
            rows.append((spec.kind + suffix, usage.seconds, usage.peak_rss_mb, report))
        del model
    cats = rows[0][3].table["category"].to_list()
    print("\nR-precision per category (all = every test playlist); +artist: with the back-off")
    header = "".join(f"{c[:14]:>15s}" for c in cats)
    print(f"{'model':18s}{header}{'fit s':>8s}{'peak MiB':>10s}")
    for kind, seconds, peak, report in rows:
        values = "".join(f"{category_mean(report, c, 'r_precision'):15.4f}" for c in cats)
        print(f"{kind:18s}{values}{seconds:8.1f}{peak:10.0f}")
    print("\nNDCG per category")
    for kind, _, _, report in rows:
        print(f"{kind:18s}" + "".join(f"{category_mean(report, c, 'ndcg'):15.4f}" for c in cats))
    for reference in ("ease", "ease+artist"):
        print(f"\nratio to {reference} (R-precision)")
        for kind, _, _, report in rows:
            ratios = "  ".join(
                f"{c} {_ratio(report, reports[reference], c):.2f}x" for c in (*KEY, ALL)
            )
            print(f"{kind:18s}{ratios}")
    if specs[-1].kind == "blend":
        print(f"chosen model: blend+artist ({specs[-1].params}, {config})")
    protocol_p(mirror, dataset, specs, config)


def fit_two_tower(spec: ModelSpec, prepared: Any) -> tuple[Any, Any]:
    """The two-tower model with each track's artist as its item feature, timed like the rest."""
    from setlist.pipeline import measure

    _, artists = np.unique(prepared.artist_names, return_inverse=True)
    features = sp.csr_matrix(
        (np.ones(len(artists), np.float32), (np.arange(len(artists)), artists)),
        shape=(len(artists), int(artists.max()) + 1),
    )
    model = spec.build()
    with measure() as usage:
        model.fit(prepared.train.csr, item_features=features)
    return model, usage


def _ratio(report: ChallengeReport, reference: ChallengeReport, category: str) -> float:
    return category_mean(report, category, "r_precision") / category_mean(
        reference, category, "r_precision"
    )


def protocol_p(
    mirror: Path, dataset: PlaylistDataset, specs: list[ModelSpec], config: ContinuationConfig
) -> None:
    sample_file = mirror / "spotify-mpd-sample" / "mpd.slice.0-999.first37.json"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "p"
        folder.mkdir()
        (folder / "mpd.slice.0-999.json").write_bytes(sample_file.read_bytes())
        sample = read_playlists(folder)[0]
    known = set(dataset.playlists["pid"].to_list())
    outside = sample.playlists.filter(~pl.col("pid").is_in(list(known)))
    # Every subset playlist trains: hold out one playlist only to reuse the preparation.
    prepared = prepare_playlists(dataset, holdout=1, seed=0)
    items = prepared.train.items
    extra = sample.tracks.filter(~pl.col("track_uri").is_in(items.ids.tolist()))
    artist_names = np.concatenate(
        [prepared.artist_names, extra["artist_name"].fill_null("").to_numpy().astype(np.str_)]
    )
    _, artist_codes = np.unique(artist_names, return_inverse=True)
    extra_rows = {u: len(items) + i for i, u in enumerate(extra["track_uri"].to_list())}
    print(
        f"\nprotocol P: {outside.height} playlists of {sample_file.name} outside the subset "
        "(too few for estimates; anecdotal), trained on all subset playlists but one"
    )
    for spec in specs:
        if spec.kind not in ("ease", "blend"):
            continue
        model, _ = fit_candidate(spec, prepared)
        continuer: Continuer = continuer_for(model, prepared, config)
        for n in (5, 10, 25):
            recs, truth, seeds = [], [], []
            for pid in outside["pid"].to_list():
                uris = (
                    sample.playlist_tracks.filter(pl.col("pid") == pid)
                    .sort("pos")["track_uri"]
                    .unique(maintain_order=True)
                    .to_list()
                )
                if len(uris) <= n:
                    continue
                rows = np.array(
                    [extra_rows[u] if u in extra_rows else items.row(u) for u in uris],
                    dtype=np.int64,
                )
                seed_rows = rows[:n]
                case = ChallengeCase(pid, "p", None, seed_rows[seed_rows < len(items)], rows[n:])
                ranked = ranked_lists(
                    continuer,
                    ChallengeSet((case,), np.zeros(0, np.int64), 1, 0),
                    prepared.popularity,
                )[pid]
                recs.append(ranked)
                truth.append(rows[n:])
                seeds.append(seed_rows)
            m = challenge_metrics(recs, truth, artist_codes, seeds=seeds)
            print(
                f"  {spec.kind:6s} N={n:2d}: {len(recs)} playlists, R-prec "
                f"{m['r_precision'].mean():.4f}, NDCG {m['ndcg'].mean():.4f}"
            )


if __name__ == "__main__":
    main()
