"""The two-tower model: sampled-softmax training learns, item features reach the item tower, and
numpy, the ONNX graph (onnxruntime) and TorchScript fold a listener in to the same vector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from setlist.errors import ConfigError, ModelError
from setlist.models.two_tower import TwoTowerRecommender
from setlist.models.two_tower_net import TrainingData

SMALL = {"dim": 8, "hidden": 16, "epochs": 5, "batch_size": 32, "learning_rate": 0.05, "threads": 1}


@pytest.fixture(scope="module")
def data() -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    dense = (rng.random((30, 40)) < 0.2) * rng.integers(1, 20, (30, 40))
    return sp.csr_matrix(dense.astype(np.float32))


@pytest.fixture(scope="module")
def fitted(data: sp.csr_matrix) -> TwoTowerRecommender:
    return TwoTowerRecommender(**SMALL).fit(data)  # type: ignore[arg-type]


def test_training_lowers_the_sampled_softmax_loss(data: sp.csr_matrix) -> None:
    model = TwoTowerRecommender(**{**SMALL, "epochs": 20}).fit(data)  # type: ignore[arg-type]
    assert len(model.losses_) == 20
    assert model.losses_[-1] < 0.9 * model.losses_[0]


def test_log_q_is_the_log_share_of_positives() -> None:
    x = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [1, 0, 5]], dtype=np.float32))
    data = TrainingData.build(x, None)
    np.testing.assert_allclose(np.exp(data.log_q), [3 / 5, 1 / 5, 1 / 5], rtol=1e-6)
    assert sorted(zip(data.users.tolist(), data.items.tolist(), strict=True)) == [
        (0, 0),
        (0, 1),
        (1, 0),
        (2, 0),
        (2, 2),
    ]


def test_item_features_change_the_item_tower(data: sp.csr_matrix) -> None:
    """Two items sharing a feature end up closer than without it; a wrong shape is refused."""
    features = sp.csr_matrix(
        (np.ones(40), (np.arange(40), np.arange(40) % 2)), shape=(40, 2), dtype=np.float32
    )
    plain = TwoTowerRecommender(**SMALL).fit(data)  # type: ignore[arg-type]
    tagged = TwoTowerRecommender(**SMALL).fit(data, item_features=features)  # type: ignore[arg-type]
    assert not np.allclose(plain.vectors()[1], tagged.vectors()[1])  # type: ignore[index]
    with pytest.raises(ModelError, match="item_features has 3 rows for 40 items"):
        TwoTowerRecommender(**SMALL).fit(data, item_features=features[:3])  # type: ignore[arg-type]


def test_same_seed_same_model(data: sp.csr_matrix, fitted: TwoTowerRecommender) -> None:
    again = TwoTowerRecommender(**SMALL).fit(data)  # type: ignore[arg-type]
    np.testing.assert_array_equal(again.vectors()[1], fitted.vectors()[1])  # type: ignore[index]


def test_torchscript_export_matches_numpy(
    fitted: TwoTowerRecommender, data: sp.csr_matrix, tmp_path: Path
) -> None:
    import torch

    path = fitted.export_torchscript(tmp_path / "tower.pt")
    tower = torch.jit.load(str(path))  # type: ignore[no-untyped-call]
    for row in (0, 7, 29):
        items, weights = fitted.model_input(data[row])
        with torch.no_grad():
            got = tower(torch.from_numpy(items), torch.from_numpy(weights)).numpy()
        np.testing.assert_allclose(got, fitted.fold_in(data[row]), atol=1e-5, rtol=0)


def test_onnx_export_and_runtime_match_numpy_within_1e_5(
    data: sp.csr_matrix, tmp_path: Path
) -> None:
    import onnxruntime as ort

    model = TwoTowerRecommender(**SMALL).fit(data)  # type: ignore[arg-type]
    path = model.export_onnx(tmp_path / "tower.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = model.fold_in(data)
    for row in (0, 7, 29):  # histories of different lengths: the input length is dynamic
        items, weights = model.model_input(data[row])
        (vector,) = session.run(["user_vector"], {"items": items, "weights": weights})
        np.testing.assert_allclose(vector[0], expected[row], atol=1e-5, rtol=0)
    model.use_runtime("onnx")
    np.testing.assert_allclose(model.fold_in(data), expected, atol=1e-5, rtol=0)
    ids_numpy = TwoTowerRecommender.recommend_histories(model, data, k=5)[0]
    model.use_runtime("numpy")
    np.testing.assert_array_equal(model.recommend_histories(data, k=5)[0], ids_numpy)
    with pytest.raises(ConfigError, match="tensorrt"):
        model.use_runtime("tensorrt")


def test_served_through_a_recall_checked_vector_index(
    fitted: TwoTowerRecommender, data: sp.csr_matrix
) -> None:
    """The item vectors go into an ANN index like ALS's (recall checked at build), and a folded-in
    listener's top 10 from the index are the model's own top 10."""
    from setlist.config import IndexConfig
    from setlist.index.build import build_index

    users, items = fitted.vectors()  # type: ignore[misc]
    index = build_index(items, users, IndexConfig(kind="hnsw", min_recall=0.95))
    assert index.recall_at_10 is not None and index.recall_at_10 >= 0.95
    expected, _ = fitted.recommend_histories(data[:5], k=10, exclude_seen=False)
    for row in range(5):
        found, _ = index.search_one(fitted.fold_in(data[row])[0], 10)
        assert set(found.tolist()) == set(expected[row].tolist())
