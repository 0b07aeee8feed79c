"""The stages of dvc.yaml, over the setlist library: fetch -> validate -> train -> evaluate,
and for playlists playlists_validate -> playlists_train.

    dvc repro                      # runs what changed (params.yaml, data, code), nothing else
    python pipelines/dvc_stages.py STAGE    # one stage by hand, from the repository root

Each stage reads its settings from params.yaml (the ``data``, ``split`` and ``train`` sections
DVC tracks per stage) on top of setlist's own settings (SETLIST_* variables: the data mirror and
cache, MLflow's tracking URI). The train stage tags every MLflow run it registers with the DVC
data version: ``dvc.data.md5`` is the MD5 of data/validated.parquet, the same hash dvc.lock
records for the stage's data dependency, so a registered version names the exact data it saw.
The playlist stages do the same for the ``tracks`` catalogue: ``playlists_validate`` streams the
MPD slices (the mirror's ``spotify-mpd``, or ``synthetic``: the demo's seeded slices) into the
three Parquet tables under data/playlists/, quarantining bad playlists by pid;
``playlists_train`` fits the playlist candidates, judges them by the RecSys Challenge 2018
metrics on held-out playlists, registers the best through the tracks gate and tags its run
with ``dvc.playlists.md5``, the hash dvc.lock records for data/playlists/playlist_tracks.parquet.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from setlist.config import Settings, get_settings

ROOT = Path(__file__).resolve().parents[1]
RAW = Path("data/interactions.parquet")
VALIDATED = Path("data/validated.parquet")
VALIDATION = Path("reports/validation.json")
TRAIN = Path("reports/train.json")
METRICS = Path("reports/metrics.json")
PLOT = Path("reports/plots/metrics_by_k.csv")
PLAYLISTS = Path("data/playlists")
PLAYLIST_PAIRS = PLAYLISTS / "playlist_tracks.parquet"
PLAYLISTS_VALIDATION = Path("reports/playlists_validation.json")
PLAYLISTS_TRAIN = Path("reports/playlists_train.json")
COLUMNS = ("user", "item", "weight", "timestamp")
KS = (5, 10, 20)


def params() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(Path("params.yaml").read_text())
    return loaded


def settings(p: dict[str, Any]) -> Settings:
    split = p["split"]
    update = {
        "min_user_items": split["min_user_items"],
        "min_item_users": split["min_item_users"],
        "test_fraction": split["test_fraction"],
        "seed": split["seed"],
    }
    return get_settings().model_copy(update=update)


def md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_json(path: Path, body: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")


def _sources(s: Settings) -> Any:
    from setlist.data.sources import SourceConfig

    return SourceConfig(s.data_mirror, s.cache_dir, s.download)


def fetch(p: dict[str, Any]) -> None:
    """The dataset named in params.yaml (mirror, cache or download, checksummed) as Parquet."""
    from setlist.pipeline import ingest

    dataset, _ = ingest(p["data"]["dataset"], _sources(settings(p)))
    frame = dataset.interactions
    RAW.parent.mkdir(parents=True, exist_ok=True)
    frame.select([c for c in COLUMNS if c in frame.columns]).write_parquet(RAW)


def validate(p: dict[str, Any]) -> None:
    """Every row checked again (types, ranges, ids); bad rows fail or are quarantined."""
    from setlist.data.validate import quality_figures
    from setlist.pipeline import ingest

    quarantine = Path("data/quarantine")
    dataset, report = ingest(
        str(RAW), _sources(settings(p)), on_bad_rows=p["data"]["on_bad_rows"],
        quarantine_dir=quarantine,
    )  # fmt: skip
    frame = dataset.interactions
    frame.select([c for c in COLUMNS if c in frame.columns]).write_parquet(VALIDATED)
    figures = {k: v for k, v in quality_figures(frame).items() if isinstance(v, int | float)}
    write_json(
        VALIDATION,
        {
            "rows_read": report.rows_read,
            "rows_quarantined": report.rows_quarantined,
            **{f"quality.{k}": v for k, v in figures.items()},
        },
    )


def _prepared(p: dict[str, Any]) -> Any:
    from setlist.pipeline import ingest, prepare

    s = settings(p)
    dataset, report = ingest(str(VALIDATED), _sources(s))
    return s, prepare(dataset, report, s.clean(), s.split())


def _git_commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def train(p: dict[str, Any]) -> None:
    """Train the models of params.yaml, register each through the gate, tag the data version."""
    from setlist.models import model_class
    from setlist.models.specs import build_specs, parse_kinds, parse_overrides
    from setlist.pipeline import run
    from setlist.registry import Registry, RegistryConfig

    s, prepared = _prepared(p)
    t = p["train"]
    overrides = [
        f"{kind}.{name}={value}"
        for kind, values in (t.get("params") or {}).items()
        for name, value in values.items()
    ]
    kinds = parse_kinds(t["models"])
    defaults = {kind: model_class(kind).defaults(s) for kind in kinds}
    specs = build_specs(kinds, parse_overrides(overrides), s.weights(), defaults)
    registry = Registry(RegistryConfig.from_settings(s))
    result = run(prepared, specs, registry)
    tags = {
        "dvc.data.path": str(VALIDATED),
        "dvc.data.md5": md5(VALIDATED),
        "dvc.raw.md5": md5(RAW),
        "git.commit": _git_commit(),
    }
    body: dict[str, Any] = {}
    for model in result.models:
        if model.version is not None:
            registry.annotate(model.version, tags, {})
        body[model.kind] = {
            **{k: float(v) for k, v in model.report.metrics.items()},
            "fit_seconds": model.fit_seconds,
            "version": model.version.version if model.version else None,
            "promoted": bool(model.decision and model.decision.promoted),
        }
    write_json(TRAIN, body)


def evaluate(p: dict[str, Any]) -> None:
    """The registry's champion on the held-out split: metrics.json and metrics by k (a plot)."""
    from setlist.bundle import ModelBundle
    from setlist.evaluate.metrics import ranking_metrics
    from setlist.evaluate.protocol import relevant_items
    from setlist.pipeline import bundle_ranked
    from setlist.registry import Registry, RegistryConfig

    s, prepared = _prepared(p)
    registry = Registry(RegistryConfig.from_settings(s))
    champion = registry.champion()
    if champion is None:
        sys.exit("evaluate: no champion in the registry (the train stage promotes one)")
    with tempfile.TemporaryDirectory() as tmp:
        bundle = ModelBundle.load(registry.download(champion.version, Path(tmp)))
        relevant = relevant_items(prepared.train.csr, prepared.test.csr)
        rows = np.flatnonzero(np.diff(relevant.indptr)).astype(np.int64)
        ranked = bundle_ranked(bundle, prepared.train, rows, max(KS))
        metrics = ranking_metrics(ranked, relevant[rows], KS)
    means = {k: float(v.mean()) for k, v in sorted(metrics.items())}
    write_json(METRICS, {"champion_version": int(champion.version), "users": len(rows), **means})
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    names = sorted({k.split("@")[0] for k in means})
    with PLOT.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["k", *names])
        for k in KS:
            writer.writerow([k, *(round(means.get(f"{n}@{k}", float("nan")), 6) for n in names)])


def playlists_validate(p: dict[str, Any]) -> None:
    """MPD slices checked playlist by playlist into data/playlists/ (three Parquet tables)."""
    from setlist.data.playlists import MPD_SOURCE, build_store, read_store
    from setlist.data.sources import fetch as fetch_source
    from setlist.pipeline_playlists import write_demo_slices

    q = p["playlists"]
    with tempfile.TemporaryDirectory(prefix="setlist-slices-") as tmp:
        if q["dataset"] == "synthetic":
            source = write_demo_slices(Path(tmp) / "slices", seed=int(p["split"]["seed"]))
        elif q["dataset"] == MPD_SOURCE:
            source = fetch_source(MPD_SOURCE, _sources(settings(p)))
        else:
            source = Path(q["dataset"]).expanduser()
        report = build_store(
            source, PLAYLISTS, name="playlists", on_bad_rows=q["on_bad_rows"],
            quarantine_path=Path("data/quarantine/playlists.quarantine.jsonl"),
        )  # fmt: skip
    dataset = read_store(PLAYLISTS)
    write_json(
        PLAYLISTS_VALIDATION,
        {
            "playlists_kept": report.playlists_kept,
            "playlists_quarantined": report.problems_total,
            "playlists": dataset.playlists.height,
            "tracks": dataset.tracks.height,
            "playlist_tracks": dataset.playlist_tracks.height,
        },
    )


def playlists_train(p: dict[str, Any]) -> None:
    """The playlist candidates on held-out playlists; the best registered through the gate."""
    from setlist.data.playlists import read_store
    from setlist.models.specs import parse_kinds
    from setlist.pipeline_playlists import (
        playlist_specs,
        prepare_playlists,
        run_playlists,
        tracks_registry_config,
    )
    from setlist.registry import Registry

    q, s = p["playlists"], settings(p)
    prepared = prepare_playlists(
        read_store(PLAYLISTS), holdout=int(q["holdout"]), seed=int(p["split"]["seed"])
    )
    specs = playlist_specs(parse_kinds(q["models"]), {})
    registry = Registry(tracks_registry_config(s))
    result = run_playlists(prepared, specs, registry)
    tags = {
        "dvc.playlists.path": str(PLAYLIST_PAIRS),
        "dvc.playlists.md5": md5(PLAYLIST_PAIRS),
        "git.commit": _git_commit(),
    }
    body: dict[str, Any] = {}
    for c in result.candidates:
        if c.version is not None:
            registry.annotate(c.version, tags, {})
        body[c.kind] = {
            **{k: float(v) for k, v in c.metrics().items()},
            "fit_seconds": c.usage.seconds,
            "version": c.version.version if c.version else None,
            "promoted": bool(c.decision and c.decision.promoted),
        }
    write_json(PLAYLISTS_TRAIN, body)


STAGES = {
    "fetch": fetch,
    "validate": validate,
    "train": train,
    "evaluate": evaluate,
    "playlists_validate": playlists_validate,
    "playlists_train": playlists_train,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=STAGES)
    STAGES[parser.parse_args().stage](params())


if __name__ == "__main__":
    main()
