"""`setlist models export` writes a two-tower bundle's listener tower; the service applies
``SETLIST_MODEL_RUNTIME`` to the model it loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from setlist.bundle import ModelBundle
from setlist.bundle_meta import BundleMeta
from setlist.cli import app
from setlist.config import Settings, WeightConfig
from setlist.errors import ConfigError
from setlist.matrix import weight
from setlist.models.als import ALSRecommender
from setlist.models.two_tower import TwoTowerRecommender
from tests.test_bundle import ITEMS, train_matrix


def _bundle(tmp_path: Path) -> tuple[Path, TwoTowerRecommender]:
    train = train_matrix()
    model = TwoTowerRecommender(dim=4, hidden=8, epochs=2, batch_size=4).fit(train.csr)
    ModelBundle.build(model, train, ITEMS, meta=BundleMeta()).save(tmp_path / "b")
    return tmp_path / "b", model


def test_export_writes_onnx_and_torchscript_of_the_listener_tower(tmp_path: Path) -> None:
    import onnxruntime as ort

    folder, model = _bundle(tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["models", "export", "--bundle", str(folder), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert (out / "listener_tower.pt").stat().st_size > 0
    session = ort.InferenceSession(str(out / "listener_tower.onnx"))
    history = train_matrix().csr[:1]
    items, weights = model.model_input(history)
    (vector,) = session.run(["user_vector"], {"items": items, "weights": weights})
    np.testing.assert_allclose(vector, model.fold_in(history), atol=1e-5)


def test_export_refuses_a_model_without_a_tower(tmp_path: Path) -> None:
    train = train_matrix()
    als = ALSRecommender(factors=2, iterations=2).fit(weight(train.csr, WeightConfig()))
    ModelBundle.build(als, train, ITEMS, meta=BundleMeta()).save(tmp_path / "b")
    result = CliRunner().invoke(app, ["models", "export", "--bundle", str(tmp_path / "b")])
    assert isinstance(result.exception, ConfigError)
    assert "'als'" in result.exception.message


@pytest.mark.parametrize("runtime", ["numpy", "onnx"])
def test_the_service_folds_in_with_the_configured_runtime(
    tmp_path: Path, settings: Settings, runtime: str
) -> None:
    from setlist.serve.answer.state import ModelInfo
    from setlist.serve.runtime.versions import state_for

    folder, model = _bundle(tmp_path)
    bundle = ModelBundle.load(folder)
    state_for(
        settings.model_copy(update={"model_runtime": runtime}),
        bundle,
        ModelInfo.from_bundle(bundle),
    )
    assert (bundle.model._onnx is not None) == (runtime == "onnx")  # type: ignore[attr-defined]
    history = train_matrix().csr
    np.testing.assert_allclose(bundle.model.fold_in(history), model.fold_in(history), atol=1e-5)
