"""The two-tower model trained data-parallel on Ray Train (``TorchTrainer``), resumable.

Each of ``workers`` processes holds the whole network (``DistributedDataParallel`` over gloo,
sparse embedding gradients included) and takes its rank's share of every epoch's positives (see
:func:`setlist.models.two_tower_net.run_epoch`). After every epoch rank 0 writes a checkpoint
(network, optimiser states, losses so far) under ``SETLIST_HOME/ray_train/<name>``; a worker that
dies is replaced by Ray Train (``FailureConfig(max_failures)``) and the group resumes from the
last checkpoint. Because an epoch's order and dropout depend only on ``(seed, epoch)``, the
resumed run ends with the same model as an uninterrupted one. The run is logged to MLflow
(parameters, loss per epoch, where the checkpoints are, which epochs each attempt started at).

Without ``address`` the Ray already running in the process is used (Ray Train starts a local
one otherwise); with ``address`` the run goes to that cluster instead, unchanged.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from setlist.config import Settings
from setlist.models.two_tower import TwoTowerRecommender
from setlist.models.two_tower_net import TrainingData


@dataclass(frozen=True)
class FaultInjection:
    """Make worker ``rank`` exit abruptly at the start of ``epoch``, once (``marker`` records
    that it happened, so the replacement worker trains on)."""

    epoch: int
    marker: Path
    rank: int = 1


@dataclass(frozen=True)
class RayTrainResult:
    """The fitted model and where the run left its traces."""

    model: TwoTowerRecommender
    run_id: str | None
    checkpoint: Path
    #: The epoch each attempt started at: [0] without failures, [0, e] after one recovery.
    starts: list[int]
    seconds: float


def train_on_ray(
    model: TwoTowerRecommender,
    user_items: sp.csr_matrix,
    settings: Settings,
    item_features: sp.csr_matrix | None = None,
    workers: int = 2,
    max_failures: int = 2,
    address: str | None = None,
    name: str | None = None,
    inject_failure: FaultInjection | None = None,
) -> RayTrainResult:
    """Fit ``model`` (its parameters: dims, epochs, batch size, seed ...) on Ray Train."""
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    if address is not None:
        from setlist.data.ray_cluster import start_ray

        start_ray(address)  # joins the cluster (a clear error naming a bad address)
    started = time.perf_counter()
    data = TrainingData.build(model.input_.fit(user_items), item_features)
    name = name or f"two_tower-{int(time.time() * 1000)}"
    storage = (settings.home / "ray_train").resolve()
    storage.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "data": ray.put(data),
        "params": model.get_params(),
        "n_items": int(user_items.shape[1]),
        "fault": inject_failure,
    }
    trainer = TorchTrainer(
        _train_loop,
        train_loop_config=config,
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=False),
        run_config=RunConfig(
            name=name,
            storage_path=str(storage),
            failure_config=FailureConfig(max_failures=max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
        ),
    )
    result = trainer.fit()
    if result.checkpoint is None:
        raise RuntimeError(f"Ray Train run {name} ended without a checkpoint: {result.error}")
    with result.checkpoint.as_directory() as folder:
        state = _load_state(Path(folder))
        checkpoint = Path(result.checkpoint.path)
    net = _net(config["params"], config["n_items"], data)
    net.load_state_dict(state["net"])
    from setlist.models.two_tower_net import export_arrays

    model.set_arrays(export_arrays(net, data), user_items)
    model.losses_ = list(state["losses"])
    seconds = time.perf_counter() - started
    run_id = _log_mlflow(settings, model, name, checkpoint, state, workers, seconds)
    return RayTrainResult(model, run_id, checkpoint, list(state["starts"]), seconds)


def train_in_process(
    model: TwoTowerRecommender,
    user_items: sp.csr_matrix,
    item_features: sp.csr_matrix | None = None,
    workers: int = 2,
) -> TwoTowerRecommender:
    """The same training as :func:`train_on_ray` with ``workers``, without Ray: every rank's
    batch in one process, their losses averaged (the update DistributedDataParallel makes)."""
    import torch

    from setlist.models.two_tower_net import export_arrays, optimisers, run_epoch

    data = TrainingData.build(model.input_.fit(user_items), item_features)
    params = model.get_params()
    net = _net(params, int(user_items.shape[1]), data)
    opts = optimisers(net, model.learning_rate)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model.losses_ = [
            run_epoch(
                net,
                opts,
                data,
                e,
                model.seed,
                model.batch_size,
                model.dropout,
                range(workers),
                workers,
            )
            for e in range(model.epochs)
        ]
    finally:
        torch.set_num_threads(before)
    model.set_arrays(export_arrays(net, data), user_items)
    return model


def _net(params: dict[str, Any], n_items: int, data: TrainingData) -> Any:
    from setlist.models.two_tower_net import build_net

    return build_net(n_items, data.n_features, params["hidden"], params["dim"], params["seed"])


def _load_state(folder: Path) -> dict[str, Any]:
    import torch

    state: dict[str, Any] = torch.load(folder / "state.pt", weights_only=True)
    return state


def _train_loop(config: dict[str, Any]) -> None:
    """One worker's loop (runs inside Ray Train)."""
    import ray
    import ray.train
    import torch
    from ray.train import Checkpoint
    from ray.train.torch import prepare_model

    from setlist.models.two_tower_net import optimisers, run_epoch

    torch.set_num_threads(1)
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    data: TrainingData = config["data"]
    if isinstance(data, ray.ObjectRef):
        data = ray.get(data)
    params = config["params"]
    net = _net(params, config["n_items"], data)
    opts = optimisers(net, params["learning_rate"])
    start, losses, starts = 0, [], []
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = _load_state(Path(folder))
        net.load_state_dict(state["net"])
        for opt, opt_state in zip(opts, state["opts"], strict=True):
            opt.load_state_dict(opt_state)
        start, losses, starts = state["epoch"] + 1, state["losses"], state["starts"]
    starts = [*starts, start]
    ddp = prepare_model(net, parallel_strategy="ddp")
    fault: FaultInjection | None = config.get("fault")
    for epoch in range(start, params["epochs"]):
        if fault and rank == fault.rank and epoch == fault.epoch and not fault.marker.exists():
            fault.marker.write_text(f"worker {rank} killed at epoch {epoch}\n")
            os._exit(1)
        loss = run_epoch(
            ddp,
            opts,
            data,
            epoch,
            params["seed"],
            params["batch_size"],
            params["dropout"],
            (rank,),
            world,
        )
        losses = [*losses, loss]
        with tempfile.TemporaryDirectory() as tmp:
            saved = None
            if rank == 0:
                state = {
                    "net": net.state_dict(),
                    "opts": [opt.state_dict() for opt in opts],
                    "epoch": epoch,
                    "losses": losses,
                    "starts": starts,
                }
                torch.save(state, Path(tmp) / "state.pt")
                saved = Checkpoint.from_directory(tmp)
            ray.train.report({"epoch": epoch, "loss": loss}, checkpoint=saved)


def _log_mlflow(
    settings: Settings,
    model: TwoTowerRecommender,
    name: str,
    checkpoint: Path,
    state: dict[str, Any],
    workers: int,
    seconds: float,
) -> str | None:
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(settings.tracking_uri)
    experiment = client.get_experiment_by_name(settings.experiment)
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else client.create_experiment(
            settings.experiment, artifact_location=settings.artifact_root.resolve().as_uri()
        )
    )
    run = client.create_run(experiment_id, run_name=name)
    now = int(time.time() * 1000)
    params = [Param(f"two_tower.{k}", str(v)) for k, v in model.get_params().items()]
    params += [Param("trainer", "ray"), Param("workers", str(workers))]
    metrics = [Metric("loss", float(v), now, i) for i, v in enumerate(state["losses"])]
    metrics.append(Metric("fit_seconds", seconds, now, 0))
    tags = [
        RunTag("setlist.checkpoint", str(checkpoint)),
        RunTag("setlist.attempt_starts", ",".join(str(s) for s in state["starts"])),
    ]
    client.log_batch(run.info.run_id, metrics=metrics, params=params, tags=tags)
    client.set_terminated(run.info.run_id)
    return str(run.info.run_id)


def recall_at(
    model: TwoTowerRecommender, train: sp.csr_matrix, test: sp.csr_matrix, k: int
) -> float:
    """Mean share of each test user's held-out items in their top k (a quick quality check)."""
    users = np.flatnonzero(np.diff(test.indptr))
    ids, _ = model.recommend(users, train[users], k=k)
    hits = [
        len(set(ids[i].tolist()) & set(test[u].indices.tolist())) / len(test[u].indices)
        for i, u in enumerate(users)
    ]
    return float(np.mean(hits)) if hits else 0.0
