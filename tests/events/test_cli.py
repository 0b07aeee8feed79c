"""The commands end to end: serve, simulate over HTTP, evaluate-policy, train --with-events."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from setlist.events.store import open_store
from tests.events.conftest import world_bundle
from tests.events.test_crash import Server
from tests.net import clean_env, free_port

pytestmark = pytest.mark.e2e


def setlist(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "setlist", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_simulate_then_evaluate_policy_then_train_with_events(tmp_path: Path) -> None:
    env = clean_env(
        SETLIST_HOME=str(tmp_path / "home"),
        SETLIST_DOWNLOAD="false",
        SETLIST_EXPLORE_MODE="epsilon",
        SETLIST_EXPLORE_EPSILON="0.5",
        OPENBLAS_NUM_THREADS="1",
        COLUMNS="200",
    )
    bundle = world_bundle(tmp_path / "bundle")
    server = Server(free_port(), env, bundle)
    server.start()
    try:
        sim = setlist(
            env, "simulate", "-d", "synthetic:tiny", "--url", server.url,
            "--users", "30", "--rate", "40", "--duration", "3", "--k", "5",
        )  # fmt: skip
    finally:
        server.kill()
    assert sim.returncode == 0, sim.stdout + sim.stderr
    assert "events acknowledged" in sim.stdout
    with open_store(f"sqlite:///{tmp_path / 'home' / 'events.db'}") as store:
        frame = store.frame()
    assert frame.filter(frame["type"] == "impression").height >= 50
    assert frame.filter(frame["type"] == "listen").height > 0
    assert frame.get_column("propensity").drop_nulls().min() < 1.0  # it explored

    evaluated = setlist(env, "evaluate-policy", "--bundle", str(bundle), "--k", "5")
    assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
    for name in ("IPS", "SNIPS", "DR", "logging policy"):
        assert name in evaluated.stdout

    trained = setlist(
        env, "train", "-d", "synthetic:tiny", "--models", "popularity", "--no-register",
        "--with-events",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert f"events: {frame.height:,} read" in trained.stdout


def test_simulate_refuses_a_target_off_this_machine(tmp_path: Path) -> None:
    env = {**os.environ, "SETLIST_HOME": str(tmp_path / "home"), "SETLIST_DOWNLOAD": "false"}
    result = setlist(
        env, "simulate", "-d", "synthetic:tiny", "--url", "http://10.9.8.7:8000", "--duration", "1"
    )
    assert result.returncode == 2
    assert "loopback" in result.stdout
