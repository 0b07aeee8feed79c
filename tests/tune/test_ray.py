"""The same search space on Ray Tune: one small run on the test session's local Ray."""

from __future__ import annotations

import pytest

from setlist.config import CleanConfig, SplitConfig
from setlist.data.synthetic import generate_preset
from setlist.data.validate import ValidationReport
from setlist.pipeline import prepare
from setlist.tune.study import TuneConfig, run_study

ray = pytest.importorskip("ray")


def test_ray_backend_runs_trials_and_refits_the_winner(ray_session: None) -> None:
    dataset = generate_preset("tiny", seed=2)
    report = ValidationReport("synthetic:tiny", rows_read=dataset.interactions.height)
    prepared = prepare(dataset, report, CleanConfig(5, 1), SplitConfig(0.2, 0))
    config = TuneConfig(
        kinds=("ease", "knn", "blend"), budget_s=120.0, backend="ray", max_trials=2, seed=0
    )
    result = run_study(prepared, config, registry=None)
    assert len(result.trials) == 2
    assert all(t.spec.kind in ("ease", "knn") for t in result.trials)
    assert any(t.state == "complete" for t in result.trials)
    assert result.final is not None and result.final.report.metrics["ndcg@10"] > 0
    assert ray.is_initialized()  # the running Ray was reused and left running
