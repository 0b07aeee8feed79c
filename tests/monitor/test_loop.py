"""The retraining loop end to end, on a synthetic world with simulated listeners.

Each test trains a champion on ``synthetic:tiny``, then replays windows of traffic with
known timestamps: the listeners (hidden tastes, :class:`setlist.simulate.ListenerModel`) ask
the served model for recommendations, react to them and play artists of their own choosing;
the events go to a real SQLite event store and the loop ticks after each window.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from setlist.cli import app
from setlist.cli.loop import build_loop
from setlist.config import Settings
from setlist.events.schema import Event
from setlist.monitor.loop import Decision, Loop
from setlist.monitor.retrain import shuffle_items
from setlist.pipeline import ingest, prepare, run
from setlist.serve.answer.state import ModelState
from setlist.serve.runtime.versions import load_version
from setlist.simulate import ListenerModel, window_traffic

WINDOW_S = 600.0
REQUESTS = 600  # per window: two answers per listener of the tiny world
ORGANIC = 5  # artists each listener plays on their own after an answer
US = 1_000_000


def loop_settings(home: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "home": home,
        "download": False,
        "mlflow_tracking_uri": None,
        "dataset": "synthetic:tiny",
        "factors": 32,  # 128 factors overfit 300 listeners
        "drift_window_s": WINDOW_S,
        "loop_cooldown_s": 3 * WINDOW_S,
        "loop_probation_s": WINDOW_S,
        "loop_schedule_s": 0.0,
        **overrides,
    }
    return Settings(**values)


class World:
    """A champion, its listeners, the event store and a clock of windows."""

    def __init__(self, settings: Settings) -> None:
        from setlist.cli.common import sources
        from setlist.cli.train import model_specs
        from setlist.registry import Registry, RegistryConfig

        self.settings = settings
        dataset, report = ingest(settings.dataset, sources(settings))
        prepared = prepare(dataset, report, settings.clean(), settings.split())
        self.registry = Registry(RegistryConfig.from_settings(settings))
        run(prepared, model_specs("als", None, settings), self.registry)
        self.listeners = ListenerModel.from_world(dataset)
        self.loop: Loop = build_loop(settings)
        self.rng = np.random.default_rng(7)
        self.start = datetime.now(UTC) - timedelta(days=2)
        self.window = 0
        self._state: ModelState | None = None

    def swap(self) -> None:
        """Serve the registry's champion (the service's hot-swap, once per window here)."""
        champion = self.registry.champion()
        assert champion is not None
        info = self._state.info if self._state is not None else None
        if info is None or info.version != champion.version:
            self._state = load_version(self.settings, "champion", self.registry)

    def recommend(self, user: str, k: int) -> dict[str, Any]:
        assert self._state is not None
        recs = self._state.recommend(user, k)
        return {
            "model_version": recs.model_version,
            "arm": "champion",
            "items": [{"item_id": i.item_id} for i in recs.items],
        }

    def traffic(self, listeners: ListenerModel | None = None) -> int:
        """One window of traffic; returns the end of the window (the loop's now)."""
        begin = self.start + timedelta(seconds=self.window * WINDOW_S)
        self.swap()
        events = window_traffic(
            self.recommend,
            listeners or self.listeners,
            self.listeners.user_ids,
            REQUESTS,
            begin,
            WINDOW_S,
            self.rng,
            organic=ORGANIC,
        )
        self.loop.ctx.store.append([Event.model_validate(e) for e in events])
        self.window += 1
        return int((begin + timedelta(seconds=WINDOW_S)).timestamp() * US)

    def step(self, listeners: ListenerModel | None = None) -> Decision:
        return self.loop.tick(self.traffic(listeners))

    def close(self) -> None:
        self.loop.ctx.store.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(loop_settings(tmp_path / "home"))
    yield w
    w.close()


def _runs(world: World, outcome: str) -> list[Any]:
    client = world.registry._client
    found = client.search_runs([world.registry.experiment_id], f"tags.`loop.outcome` = '{outcome}'")
    return list(found)


def test_stable_tastes_at_most_one_false_alarm_in_20_windows(world: World) -> None:
    decisions = [world.step() for _ in range(22)]
    judged = [d for d in decisions if d.drift is not None and d.drift.enough]
    assert len(judged) >= 20, [d.outcome for d in decisions]
    alarms = [d for d in judged if d.drift is not None and d.drift.drifted]
    assert len(alarms) <= 1, [d.reason for d in alarms]


def test_taste_shift_alerts_in_one_window_retrains_and_promotes(world: World) -> None:
    before = world.registry.champion()
    assert before is not None
    for _ in range(3):
        assert world.step().outcome in ("warming_up", "no_drift")
    decision = world.step(world.listeners.shifted(seed=1))
    assert decision.drift is not None and decision.drift.drifted, decision.reason
    assert decision.trigger in ("performance_drift", "data_drift")
    assert decision.outcome == "promoted", decision.reason
    after = world.registry.champion()
    assert after is not None and after.version == decision.version != before.version
    assert after.tags.get("loop.trigger") == decision.trigger
    runs = _runs(world, "promoted")
    assert len(runs) == 1 and runs[0].data.tags["loop.reason"] == decision.reason
    assert any(a.path.endswith(".parquet") for a in world.registry._client.list_artifacts(
        runs[0].info.run_id))  # fmt: skip
    # The new champion serves the shifted listeners better than the old one did: it keeps
    # its place after probation.
    kept = world.step(world.listeners.shifted(seed=1))  # a window later: probation is over
    assert kept.outcome == "kept", kept.reason
    assert world.registry.champion().version == after.version  # type: ignore[union-attr]


def test_shuffled_training_data_is_never_promoted(world: World) -> None:
    for _ in range(2):
        world.step()
    champion = world.registry.champion()
    assert champion is not None
    for seed in range(3):
        decision = world.loop.retrain_now(trigger="drill", transform=shuffle_items(seed))
        assert decision.outcome == "refused", decision.reason
    assert world.registry.champion().version == champion.version  # type: ignore[union-attr]
    assert len(_runs(world, "refused")) == 3


def test_a_live_drop_on_probation_rolls_the_champion_back(world: World) -> None:
    for _ in range(2):
        world.step()
    good = world.registry.champion()
    assert good is not None
    # The gate refuses a shuffled model; an operator promotes it anyway (a gate mistake).
    bad = world.loop.retrain_now(trigger="drill", transform=shuffle_items(0))
    assert bad.outcome == "refused" and bad.version is not None
    now = world.traffic()
    world.registry.set_alias("champion", bad.version)
    world.loop.memory.probation_version = bad.version
    world.loop.memory.previous_version = good.version
    world.loop.memory.probation_since_us = now
    decision = world.step()
    assert decision.outcome == "rolled_back", decision.reason
    assert world.registry.champion().version == good.version  # type: ignore[union-attr]
    assert world.loop.memory.probation_version is None
    assert len(_runs(world, "rolled_back")) == 1


def test_schedule_triggers_and_cool_down_holds_the_next_one(tmp_path: Path) -> None:
    w = World(loop_settings(tmp_path / "home", loop_schedule_s=WINDOW_S))
    try:
        assert w.loop.tick(w.traffic()).outcome == "warming_up"  # the schedule starts counting
        first = w.loop.tick(w.traffic())  # one window later: no drift verdict yet, schedule due
        assert first.trigger == "schedule" and first.outcome in ("promoted", "refused")
        w.loop.memory.probation_version = None  # judge the cool-down, not the probation
        second = w.loop.tick(w.traffic())
        assert second.trigger == "schedule" and second.outcome == "skipped", second.reason
        assert "cool-down" in second.reason
        # The memory survives a restart of the worker.
        again = build_loop(w.settings)
        assert again.memory.last_retrain_us == w.loop.memory.last_retrain_us
        again.ctx.store.close()
    finally:
        w.close()


def test_retrain_command_prints_the_decision(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.step()
    world.close()
    s = world.settings
    for name, value in {
        "SETLIST_HOME": str(s.home),
        "SETLIST_DATASET": s.dataset,
        "SETLIST_FACTORS": "32",
        "SETLIST_DOWNLOAD": "false",
        "SETLIST_DRIFT_WINDOW_S": str(WINDOW_S),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    from setlist.config import get_settings

    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["retrain", "--drill", "shuffle"])
        assert result.exit_code == 0, result.output
        assert "refused" in result.output and "gate" in result.output
        bad = CliRunner().invoke(app, ["retrain", "--drill", "nonsense"])
        assert bad.exit_code != 0 and "--drill" in bad.output
        ticks = CliRunner().invoke(app, ["loop", "--max-ticks", "1", "--metrics-port", "0"])
        assert ticks.exit_code == 0, ticks.output
        assert "tick 1:" in ticks.output
    finally:
        get_settings.cache_clear()


def test_playlist_feedback_retrains_the_organic_ranker_in_a_tick(world: World) -> None:
    """Follows and skips of organic playlists reach the loop through the event store; the tick
    retrains the organic ranker on them, saves a version and logs the decision to MLflow."""
    from setlist.index.organic import link
    from setlist.index.organic_ranker import RankerConfig
    from setlist.index.organic_store import latest_version
    from setlist.monitor.organic_loop import listening
    from setlist.offline.organic import OrganicConfig, save_result, train_organic
    from tests.monitor.organic_world import POPULAR, playlists_over

    dataset, _ = world.loop.ctx.base()
    history, names, users = listening(dataset, world.loop.ctx.store.frame())
    table = playlists_over(names, 60)
    config = OrganicConfig(ranker=RankerConfig(n_estimators=20, n_candidates=20, n_buddies=10))
    first = save_result(
        train_organic(history, names, table, config), world.settings.organic_path, config
    )
    linked = link(table, names)
    begin = world.start + timedelta(seconds=world.window * WINDOW_S)
    events = []
    for row in range(120):  # each listener shown the five playlists closest to their artists
        overlap = linked.binary @ (history[row].toarray().ravel() > 0)
        for position, pid in enumerate(np.argsort(-overlap, kind="stable")[:5].tolist()):
            kind = "follow" if linked.followers[pid] >= POPULAR else "skip"
            events.append(
                Event.model_validate(
                    {"event_id": f"pl-{row}-{pid}", "user_id": users[row],
                     "item_id": str(linked.ids[pid]), "playlist_id": str(linked.ids[pid]),
                     "type": f"playlist_{kind}", "ts": begin + timedelta(seconds=row),
                     "position": position, "propensity": 0.5}
                )
            )  # fmt: skip
    world.loop.ctx.store.append(events)
    decision = world.step()
    organic = decision.organic
    assert organic is not None, decision.reason
    assert organic.outcome in ("saved", "refused"), organic.reason
    assert organic.figures["feedback"] == 600
    runs = _runs(world, organic.outcome)
    assert any(r.data.tags.get("loop.trigger") == "playlist_feedback" for r in runs)
    if organic.outcome == "saved":
        assert latest_version(world.settings.organic_path) != first
    # Nothing new since: the next tick leaves the organic ranker alone.
    assert world.step().organic is None
