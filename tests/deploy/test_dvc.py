"""dvc.yaml and params.yaml: the real pipeline (fetch -> validate -> train -> evaluate, and the
playlist stages playlists_validate -> playlists_train) run by
`dvc repro` on a tiny synthetic dataset in a scratch repository with a local remote; a second
`dvc repro` runs nothing; the data goes to the remote; the MLflow runs carry the data's DVC
hash (the one dvc.lock records); `dvc exp run` with a changed parameter shows up in
`dvc exp show`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy.files import ROOT

BIN = Path(sys.executable).parent
STAGES = ["fetch", "validate", "train", "evaluate", "playlists_validate", "playlists_train"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (BIN / "dvc").exists():
        pytest.fail("dvc is not installed: `make install` (dev extras) installs it")
    work = tmp_path_factory.mktemp("dvc")
    shutil.copy(ROOT / "dvc.yaml", work)
    shutil.copytree(ROOT / "pipelines", work / "pipelines")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["dataset"] = "synthetic:small"
    params["train"]["params"] = {"als": {"factors": 16, "iterations": 3}}
    params["playlists"].update(dataset="synthetic", models="popularity,knn", holdout=100)
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    for argv in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        run(work, *argv)
    run(work, "dvc", "remote", "add", "-d", "local", str(work.parent / "remote"))
    commit(work, "pipeline")
    return work


def run(work: Path, *argv: str) -> str:
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT / "src"),
        "SETLIST_HOME": str(work / "home"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    done = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{argv}: {done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def commit(work: Path, message: str) -> None:
    run(work, "git", "add", "-A")
    run(work, "git", "commit", "-q", "-m", message)


def test_repro_runs_every_stage_once_and_versions_the_data(repo: Path) -> None:
    out = run(repo, "dvc", "repro")
    assert [s for s in STAGES if f"Running stage '{s}'" in out] == STAGES, out
    metrics = json.loads((repo / "reports" / "metrics.json").read_text())
    assert metrics["champion_version"] >= 1 and 0 < metrics["ndcg@10"] <= 1
    plot = (repo / "reports" / "plots" / "metrics_by_k.csv").read_text().splitlines()
    assert plot[0].startswith("k,") and [r.split(",")[0] for r in plot[1:]] == ["5", "10", "20"]
    again = run(repo, "dvc", "repro")
    assert "Running stage" not in again and "up to date" in again, again
    run(repo, "dvc", "push")
    assert any(p.is_file() for p in (repo.parent / "remote").rglob("*"))
    assert "in sync" in run(repo, "dvc", "status", "--cloud")
    commit(repo, "run")


def test_mlflow_runs_record_the_data_version_of_dvc_lock(repo: Path) -> None:
    from mlflow.tracking import MlflowClient

    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    (data,) = [d for d in lock["stages"]["train"]["deps"] if d["path"] == "data/validated.parquet"]
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    tagged = [r for r in runs if "dvc.data.md5" in r.data.tags]
    train = json.loads((repo / "reports" / "train.json").read_text())
    assert len(tagged) == len(train) == 2  # popularity and ALS, each registered
    assert {r.data.tags["dvc.data.md5"] for r in tagged} == {data["md5"]}
    assert {r.data.tags["dvc.data.path"] for r in tagged} == {"data/validated.parquet"}


def test_playlist_stages_register_a_tracks_champion_tagged_with_the_data_version(
    repo: Path,
) -> None:
    from mlflow.tracking import MlflowClient

    validation = json.loads((repo / "reports" / "playlists_validation.json").read_text())
    assert validation["playlists"] == validation["playlists_kept"] == 600
    assert validation["playlists_quarantined"] == 0 and validation["playlist_tracks"] > 0
    train = json.loads((repo / "reports" / "playlists_train.json").read_text())
    assert set(train) == {"popularity", "knn"}
    best = max(train, key=lambda k: train[k]["r_precision"])
    assert (
        train[best]["promoted"] and train["knn"]["r_precision"] > train["popularity"]["r_precision"]
    )
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    path = "data/playlists/playlist_tracks.parquet"
    (pairs,) = [d for d in lock["stages"]["playlists_train"]["deps"] if d["path"] == path]
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    tagged = [r for r in runs if "dvc.playlists.md5" in r.data.tags]
    assert len(tagged) == 1 and tagged[0].data.tags["dvc.playlists.md5"] == pairs["md5"]
    assert tagged[0].data.tags["catalogue"] == "tracks"


def test_an_experiment_with_a_changed_parameter_is_listed(repo: Path) -> None:
    out = run(repo, "dvc", "exp", "run", "-n", "small-als", "-S", "train.params.als.factors=8")
    assert "Running stage 'train'" in out and "Running stage 'fetch'" not in out, out
    assert "Running stage 'playlists_train'" not in out, out
    text = run(repo, "dvc", "exp", "show", "--json")
    shown = json.loads(text[text.index("[") :])
    names = [e.get("name") for rev in shown for e in rev.get("experiments") or []]
    assert "small-als" in names, shown
