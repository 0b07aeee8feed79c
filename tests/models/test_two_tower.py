"""The two-tower model: numpy scoring, PyTorch and the ONNX export agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from setlist.models.two_tower import TwoTowerRecommender


@pytest.fixture(scope="module")
def fitted() -> tuple[TwoTowerRecommender, sp.csr_matrix]:
    rng = np.random.default_rng(0)
    dense = (rng.random((30, 40)) < 0.2) * rng.integers(1, 20, (30, 40))
    x = sp.csr_matrix(dense.astype(np.float32))
    model = TwoTowerRecommender(dim=8, hidden=16, epochs=5, batch_size=8, threads=1).fit(x)
    return model, x


def test_numpy_scores_match_torch(fitted: tuple[TwoTowerRecommender, sp.csr_matrix]) -> None:
    import torch

    model, x = fitted
    with torch.no_grad():
        expected = model.torch_module()(torch.from_numpy(model.model_input(x))).numpy()
    np.testing.assert_allclose(model.score_histories(x), expected, atol=1e-5, rtol=0)


def test_onnx_export_scores_match_torch_within_1e_5(
    fitted: tuple[TwoTowerRecommender, sp.csr_matrix], tmp_path: Path
) -> None:
    import onnxruntime as ort
    import torch

    model, x = fitted
    path = model.export_onnx(tmp_path / "two_tower.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    history = model.model_input(x)
    for rows in (slice(0, 1), slice(0, 30)):  # the batch dimension is dynamic
        (onnx_scores,) = session.run(["scores"], {"history": history[rows]})
        with torch.no_grad():
            torch_scores = model.torch_module()(torch.from_numpy(history[rows])).numpy()
        assert onnx_scores.shape == torch_scores.shape
        np.testing.assert_allclose(onnx_scores, torch_scores, atol=1e-5, rtol=0)
