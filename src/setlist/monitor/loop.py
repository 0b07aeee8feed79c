"""When to retrain and when to roll back: triggers, cool-down, probation, every decision logged.

One :meth:`Loop.tick` at a time (``setlist loop`` calls it every ``interval_s``; ``setlist
retrain`` calls :meth:`Loop.retrain_now` once):

1. **Probation.** After a promotion the new champion is watched for ``probation_s``: its
   listen-through on live impressions (those tagged with its version) is compared with the
   previous champion's over the window before the promotion (bootstrap over listeners, the
   drift module's ``listen_through`` check). A significant drop moves ``champion`` back to the
   previous version (``rolled_back``); a probation that ends without one keeps it (``kept``).
   Nothing else happens during probation.
2. **Drift.** The reference window is the first ``window_s`` of traffic served by the current
   champion (fixed, so slow drift adds up instead of hiding in a rolling comparison); the
   current window is the latest ``window_s``. Data and performance drift are
   :func:`setlist.monitor.drift.check_drift`.
3. **Triggers,** in order: performance drift, data drift, schedule (``schedule_s`` since the
   last retraining; 0 is off). A trigger inside the cool-down (``cooldown_s`` since the last
   retraining) is recorded as ``skipped``.
4. **Retrain** (:func:`setlist.monitor.retrain.retrain`): the candidate goes through the
   promotion gate; the service hot-swaps to it when the alias moves.
5. **Organic playlists** (:mod:`setlist.monitor.organic_loop`), after any of the above: the
   organic ranker retrains on playlist feedback once enough of it is new, and is kept only if
   no worse than the version serving (its own MLflow run, ``loop-playlist_feedback-<outcome>``).

Every decision with an action or a drift verdict is an MLflow run (``loop-<trigger>-<outcome>``)
with the reason in the tag ``loop.reason``; quiet ticks only update the loop's metrics. The
loop's own memory (last retraining, probation) is a JSON file, so a restart keeps the
cool-down and the probation.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from setlist.bundle import ModelBundle
from setlist.config import LoopConfig
from setlist.data.schema import Dataset
from setlist.data.validate import ValidationReport
from setlist.events.store.base import FRAME_SCHEMA, EventStore
from setlist.models.specs import ModelSpec
from setlist.monitor.drift import DriftConfig, DriftReport, check_drift
from setlist.monitor.metrics import LoopMetrics
from setlist.monitor.organic_loop import OrganicDecision, OrganicLoopConfig, organic_turn
from setlist.monitor.retrain import RetrainConfig, RetrainResult, Transform, describe, retrain
from setlist.registry import Registry

log = logging.getLogger(__name__)
US = 1_000_000
REREAD = 10_000  # seqs read again each tick, for events committed out of seq order
# Ticks that decide nothing: they update the metrics but log no MLflow run.
QUIET = frozenset({"warming_up", "probation", "no_drift", "too_few_events"})
ORGANIC = "playlist_feedback"  # the organic ranker's trigger, in MLflow runs and metrics


@dataclass
class LoopMemory:
    """What the loop remembers between ticks and restarts."""

    last_retrain_us: int | None = None
    first_look_us: int | None = None
    probation_version: str | None = None
    previous_version: str | None = None
    probation_since_us: int | None = None

    @classmethod
    def load(cls, path: Path) -> LoopMemory:
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text())
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(path)  # atomic: a crash leaves the old memory, never half a file


@dataclass
class Decision:
    """What one tick decided, and why."""

    outcome: str  # promoted, refused, failed, skipped, rolled_back, kept, probation, no_drift, ...
    reason: str
    trigger: str | None = None
    version: str | None = None
    drift: DriftReport | None = None
    retrain: RetrainResult | None = None
    run_id: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    organic: OrganicDecision | None = None  # the organic ranker's turn, when it acted


@dataclass
class LoopContext:
    """Where the loop reads and writes: store, registry, base data, and its own folder."""

    store: EventStore
    registry: Registry
    base: Callable[[], tuple[Dataset, ValidationReport]]
    default_spec: ModelSpec
    retrain: RetrainConfig
    drift: DriftConfig
    loop: LoopConfig
    folder: Path
    metrics: LoopMetrics | None = None
    organic: OrganicLoopConfig | None = None  # None: the organic ranker is not retrained


class Loop:
    """The retraining loop over one event store and one registered model."""

    def __init__(self, ctx: LoopContext) -> None:
        self.ctx = ctx
        self.memory = LoopMemory.load(self.memory_path)
        self._champion: tuple[str, ModelBundle] | None = None
        self._frame = pl.DataFrame(schema=FRAME_SCHEMA)
        self._seen_seq = 0

    @property
    def memory_path(self) -> Path:
        return self.ctx.folder / "loop-state.json"

    # ------------------------------------------------------------------ ticks

    def tick(self, now_us: int | None = None) -> Decision:
        """Look once: probation, else drift and triggers; retrain when one fires."""
        now = now_us if now_us is not None else int(time.time() * US)
        events = self._events().filter(pl.col("ts_us") < now)
        if self.memory.probation_version is not None:
            decision = self._probation(events, now)
        else:
            decision = self._watch(events, now)
        decision.organic = self._organic(events)
        self._finish(decision)
        return decision

    def retrain_now(
        self, now_us: int | None = None, trigger: str = "manual", transform: Transform | None = None
    ) -> Decision:
        """Retrain at once (no drift check, no cool-down): ``setlist retrain``."""
        now = now_us if now_us is not None else int(time.time() * US)
        events = self._events().filter(pl.col("ts_us") < now)
        decision = self._retrain(events, now, trigger, f"{trigger} retraining", None, transform)
        if transform is None:  # a drill is about the artists' gate
            decision.organic = self._organic(events, force=True)
        self._finish(decision)
        return decision

    def _watch(self, events: pl.DataFrame, now: int) -> Decision:
        if self.memory.first_look_us is None:
            self.memory.first_look_us = now  # the schedule counts from here until a retraining
        report = self._drift(events, now)
        trigger = self._trigger(report, now)
        if trigger is None:
            if report is None:
                return Decision("warming_up", f"need two windows of {self._w()} of traffic")
            return Decision(report.outcome, report.reason(), drift=report)
        reason = (
            report.reason()
            if report is not None and trigger != "schedule"
            else ("scheduled retraining")
        )
        if self._cooling(now):
            left = (self.memory.last_retrain_us or 0) + self.ctx.loop.cooldown_s * US - now
            return Decision(
                "skipped", f"{reason}; cool-down: {left / US:,.0f} s left", trigger, drift=report
            )
        return self._retrain(events, now, trigger, reason, report, None)

    def _drift(self, events: pl.DataFrame, now: int) -> DriftReport | None:
        """The champion's first window of traffic against the latest; None before both exist."""
        version = self.ctx.registry.champion()
        start = self._reference_start(events, version.version if version else None)
        window = int(self.ctx.drift.window_s * US)
        if start is None or now - start < 2 * window:
            return None
        reference = events.filter((pl.col("ts_us") >= start) & (pl.col("ts_us") < start + window))
        current = events.filter(pl.col("ts_us") >= now - window)
        return self._check(reference, current, self._champion_bundle())

    def _trigger(self, report: DriftReport | None, now: int) -> str | None:
        if report is not None and report.enough and report.performance_drifted:
            return "performance_drift"
        if report is not None and report.enough and report.data_drifted:
            return "data_drift"
        schedule = self.ctx.loop.schedule_s
        last = self.memory.last_retrain_us or self.memory.first_look_us or now
        if schedule > 0 and now - last >= schedule * US:
            return "schedule"
        return None

    def _cooling(self, now: int) -> bool:
        last = self.memory.last_retrain_us
        return last is not None and now - last < self.ctx.loop.cooldown_s * US

    # ---------------------------------------------------------------- retrain

    def _retrain(
        self,
        events: pl.DataFrame,
        now: int,
        trigger: str,
        reason: str,
        report: DriftReport | None,
        transform: Transform | None,
    ) -> Decision:
        before = self.ctx.registry.champion()
        base, validation = self.ctx.base()
        self.memory.last_retrain_us = now
        try:
            result = retrain(
                base=base,
                report=validation,
                events=events,
                registry=self.ctx.registry,
                default_spec=self.ctx.default_spec,
                config=self.ctx.retrain,
                now_us=now,
                window_s=self.ctx.drift.window_s,
                snapshot_dir=self.ctx.folder / "snapshots",
                tags={"loop.trigger": trigger},
                transform=transform,
                champion=self._champion_bundle(),
            )
        except Exception as exc:  # a failed retraining is a decision too; the champion stays
            log.exception("retraining failed")
            return Decision("failed", f"{reason}; retraining failed: {exc}", trigger, drift=report)
        gate = result.decision.reason
        version = result.decision.candidate.version
        if not result.promoted:
            return Decision(
                "refused", f"{reason}; gate: {gate}", trigger, version, report, result,
                figures=describe(result),
            )  # fmt: skip
        self.memory.probation_version = version
        self.memory.previous_version = before.version if before else None
        self.memory.probation_since_us = now
        return Decision(
            "promoted", f"{reason}; gate: {gate}", trigger, version, report, result,
            figures=describe(result),
        )  # fmt: skip

    # -------------------------------------------------------------- probation

    def _probation(self, events: pl.DataFrame, now: int) -> Decision:
        version = self.memory.probation_version
        previous = self.memory.previous_version
        since = self.memory.probation_since_us or now
        window = int(self.ctx.drift.window_s * US)
        live = events.filter((pl.col("ts_us") >= since) & (pl.col("model_version") == version))
        before = events.filter(
            (pl.col("ts_us") >= since - window)
            & (pl.col("ts_us") < since)
            & (pl.col("model_version") == previous)
        )
        ended = now - since >= self.ctx.loop.probation_s * US
        if previous is None:
            self._end_probation()
            return Decision("kept", f"v{version} had no champion before it", "probation", version)
        report = check_drift(before, live, self.ctx.drift)
        drop = next((c for c in report.checks if c.name == "listen_through"), None)
        if report.enough and drop is not None and drop.drifted:
            self.ctx.registry.set_alias("champion", previous)
            self._end_probation()
            return Decision(
                "rolled_back", f"v{version} on probation: {drop.detail}; champion back to "
                f"v{previous}", "probation", version, report,
            )  # fmt: skip
        if ended:
            self._end_probation()
            detail = drop.detail if drop is not None else report.reason()
            return Decision("kept", f"v{version} passed probation: {detail}", "probation", version,
                            report)  # fmt: skip
        left = (since + self.ctx.loop.probation_s * US - now) / US
        return Decision(
            "probation", f"v{version} on probation, {left:,.0f} s left", "probation", version
        )

    def _end_probation(self) -> None:
        self.memory.probation_version = None
        self.memory.previous_version = None
        self.memory.probation_since_us = None

    # ---------------------------------------------------------------- organic

    def _organic(self, events: pl.DataFrame, force: bool = False) -> OrganicDecision | None:
        if self.ctx.organic is None:
            return None
        return organic_turn(self.ctx.organic, lambda: self.ctx.base()[0], events, force)

    # ------------------------------------------------------------------ pieces

    def _events(self) -> pl.DataFrame:
        """Every stored event, each read once: a tick fetches those stored since the last one.

        It starts ``REREAD`` seqs back and keeps only seqs it has not seen: with several
        writers (PostgreSQL), a lower seq can commit after a higher one.
        """
        rows = list(self.ctx.store.iter_rows(after_seq=max(0, self._seen_seq - REREAD)))
        if rows:
            fresh = pl.DataFrame(rows, schema=FRAME_SCHEMA, orient="row")
            fresh = fresh.join(self._frame.select("seq"), on="seq", how="anti")
            self._frame = pl.concat([self._frame, fresh])
            self._seen_seq = int(rows[-1][0])
        return self._frame

    def _champion_bundle(self) -> ModelBundle | None:
        champion = self.ctx.registry.champion()
        if champion is None:
            self._champion = None
            return None
        if self._champion is None or self._champion[0] != champion.version:
            folder = self.ctx.registry.download(champion.version, self.ctx.folder / "champion")
            self._champion = (champion.version, ModelBundle.load(folder))
        return self._champion[1]

    def _reference_start(self, events: pl.DataFrame, version: str | None) -> int | None:
        served = events.filter(pl.col("model_version") == version) if version else events
        if served.height == 0:
            return None
        return int(served.get_column("ts_us").min())  # type: ignore[arg-type]

    def _check(
        self, reference: pl.DataFrame, current: pl.DataFrame, bundle: ModelBundle | None
    ) -> DriftReport:
        if bundle is None:
            return check_drift(reference, current, self.ctx.drift)
        vectors = item_vectors(bundle)
        return check_drift(
            reference,
            current,
            self.ctx.drift,
            known_users=set(bundle.users.ids.tolist()),
            known_items=set(bundle.items.ids.tolist()),
            item_vectors=vectors,
        )

    def _finish(self, decision: Decision) -> None:
        self.memory.save(self.memory_path)
        if decision.outcome not in QUIET:
            decision.run_id = self._log(decision)
        self._observe(decision)
        log.info("loop: %s (%s)", decision.outcome, decision.reason)
        o = decision.organic
        if o is not None:
            self._log(Decision(o.outcome, o.reason, ORGANIC, o.version, figures=o.figures))
            if self.ctx.metrics is not None:
                self.ctx.metrics.retrain_runs.labels(ORGANIC, o.outcome).inc()
            log.info("loop: organic %s (%s)", o.outcome, o.reason)

    def _log(self, d: Decision) -> str | None:
        tags = {"loop.outcome": d.outcome, "loop.reason": d.reason,
                "loop.trigger": d.trigger or ""}  # fmt: skip
        if d.version is not None:
            tags["loop.version"] = d.version
        metrics = {f"drift.{k}": v for k, v in (d.drift.scores() if d.drift else {}).items()}
        metrics.update({f"loop.{k}": float(v) for k, v in d.figures.items() if _number(v)})
        artifacts = [d.retrain.snapshot] if d.retrain is not None else []
        try:
            return self.ctx.registry.log_run(
                f"loop-{d.trigger or 'tick'}-{d.outcome}",
                params={"window_s": self.ctx.drift.window_s},
                metrics=metrics,
                tags=tags,
                artifacts=artifacts,
            )
        except Exception:  # the decision stands even if MLflow is down; the log says so
            log.exception("could not log the loop decision to MLflow")
            return None

    def _observe(self, d: Decision) -> None:
        m = self.ctx.metrics
        if m is None:
            return
        if d.drift is not None:
            for check in d.drift.checks:
                m.drift_score.labels(check.name).set(check.statistic)
                m.drift_threshold.labels(check.name).set(check.threshold)
            m.drift_detected.labels("data").set(int(d.drift.enough and d.drift.data_drifted))
            m.drift_detected.labels("performance").set(
                int(d.drift.enough and d.drift.performance_drifted)
            )
            verdict = "drift" if d.drift.drifted else "no_drift"
            m.windows.labels(verdict if d.drift.enough else "too_few_events").inc()
        if d.trigger is not None and d.outcome != "probation":
            m.retrain_runs.labels(d.trigger, d.outcome).inc()
        m.probation.set(int(self.memory.probation_version is not None))
        m.last_tick.set(time.time())

    def _w(self) -> str:
        return f"{self.ctx.drift.window_s:g} s"


def item_vectors(bundle: ModelBundle) -> tuple[list[str], np.ndarray] | None:
    """The served model's item vectors (factor models), for the PCA drift check."""
    vectors = bundle.model.vectors()
    if vectors is None:
        return None
    return bundle.items.ids.tolist(), np.asarray(vectors[1])


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
