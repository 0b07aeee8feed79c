"""Ray Train for the two-tower model: 2 data-parallel workers, a checkpoint every epoch, and a
worker killed mid-training is replaced, the run resuming from the last checkpoint to the same
final model (and quality) as an uninterrupted run with the same seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from setlist.config import Settings
from setlist.models.two_tower import TwoTowerRecommender
from setlist.models.two_tower_ray import (
    FaultInjection,
    recall_at,
    train_in_process,
    train_on_ray,
)

PARAMS = {"dim": 8, "hidden": 16, "epochs": 4, "batch_size": 32, "learning_rate": 0.05}


def blocks() -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """60 listeners in 3 taste blocks of 10 items; each holds out 2 of its block's items."""
    rng = np.random.default_rng(0)
    train = np.zeros((60, 30), dtype=np.float32)
    test = np.zeros_like(train)
    for u in range(60):
        block = (u % 3) * 10 + rng.permutation(10)
        train[u, block[:6]] = rng.integers(1, 20, 6)
        test[u, block[6:8]] = 1.0
    return sp.csr_matrix(train), sp.csr_matrix(test)


@pytest.mark.usefixtures("ray_session")
def test_killed_worker_resumes_from_checkpoint_to_the_same_model(
    settings: Settings, tmp_path: Path
) -> None:
    train, test = blocks()
    # The unkilled reference: the same 2-worker data-parallel training, in this process.
    clean = train_in_process(TwoTowerRecommender(**PARAMS), train, workers=2)  # type: ignore[arg-type]
    marker = tmp_path / "killed"
    killed = train_on_ray(
        TwoTowerRecommender(**PARAMS),  # type: ignore[arg-type]
        train,
        settings,
        name="killed",
        max_failures=1,
        inject_failure=FaultInjection(epoch=3, marker=marker),
    )
    assert marker.read_text().startswith("worker 1 killed at epoch 3")
    # The replacement group resumed from a checkpoint, not from scratch: the newest one Ray had
    # registered when the worker died (epoch 2's at best; on a loaded machine an older one).
    assert len(killed.starts) == 2 and killed.starts[0] == 0 and 1 <= killed.starts[1] <= 3
    assert len(killed.model.losses_) == len(clean.losses_) == 4
    np.testing.assert_allclose(killed.model.losses_, clean.losses_, rtol=1e-4)
    killed_items, clean_items = killed.model.vectors()[1], clean.vectors()[1]  # type: ignore[index]
    np.testing.assert_allclose(killed_items, clean_items, atol=1e-4)
    quality = recall_at(clean, train, test, k=10)
    assert quality > 10 / 30  # better than chance: it learnt the blocks
    assert recall_at(killed.model, train, test, k=10) == pytest.approx(quality, abs=1e-9)
    # checkpoints under SETLIST_HOME, and the run in MLflow with its loss per epoch
    assert killed.checkpoint.is_relative_to(settings.home.resolve())
    assert (killed.checkpoint / "state.pt").exists()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(settings.tracking_uri)
    assert killed.run_id is not None
    run = client.get_run(killed.run_id)
    assert run.data.tags["setlist.attempt_starts"] == ",".join(map(str, killed.starts))
    assert len(client.get_metric_history(killed.run_id, "loss")) == 4
