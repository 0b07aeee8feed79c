"""One contract suite for every registered model (after implicit's ``RecommenderBaseTestMixin``).

Each model runs on tiny matrices with a known answer: two disjoint blocks of users and items
(the "checkerboard"), where a personalised model must recommend a user's own block first, and a
skewed matrix where popularity's answer is the most-heard unseen items. A new model is picked up
from the registry automatically; add its small parameters to ``SMALL_PARAMS`` to keep it fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from setlist.arrays import sha256_file
from setlist.errors import ArtifactError, ConfigError, ModelError
from setlist.models import load_model, model_class
from setlist.models.base import _REGISTRY, Recommender

KINDS = sorted(_REGISTRY)
SMALL_PARAMS: dict[str, dict[str, Any]] = {
    "als": {"factors": 4, "iterations": 5, "seed": 0},
    "popularity": {},
    "knn": {"k": 5},
    "ease": {"l2": 5.0},
    "bpr": {"factors": 8, "iterations": 200, "learning_rate": 0.05, "threads": 1},
    "two_tower": {
        "dim": 8,
        "hidden": 16,
        "epochs": 60,
        "batch_size": 80,
        "learning_rate": 0.05,
        "dropout": 0.0,
    },
    "blend": {
        "members": [
            {"kind": "ease", "params": {"l2": 5.0}},
            {"kind": "als", "params": {"factors": 4, "iterations": 5}, "weighting": "log1p"},
        ],
        "weights": [0.7, 0.3],
    },
}
INVALID_PARAMS: dict[str, list[dict[str, Any]]] = {
    "als": [{"factors": 0}, {"iterations": 0}, {"regularization": -0.1}],
    "knn": [{"k": 0}, {"similarity": "jaccard"}, {"shrink": -1.0}, {"weighting": "sqrt"}],
    "ease": [{"l2": 0.0}, {"max_items": 0}, {"min_item_users": 0}, {"alpha": -1.0}],
    "bpr": [{"factors": -1}, {"iterations": 0}, {"learning_rate": 0.0}],
    "two_tower": [{"dim": 0}, {"epochs": 0}, {"dropout": 1.0}],
    "blend": [
        {"members": []},
        {"members": [{"kind": "no-such-model"}]},
        {"members": [{"kind": "blend"}]},
        {"weights": [1.0]},
        {"weights": [-1.0, 1.0]},
    ],
}
#: Models whose known answer is "most popular unseen first" instead of the block structure.
NOT_PERSONALISED = {"popularity"}

BLOCK, N_USERS = 10, 20


def block_matrix() -> sp.csr_matrix:
    """Users 0-9 heard items 0-9, users 10-19 items 10-19, each missing two of its own block.

    User u misses in-block items u % 10 and (u + 3) % 10, so every user has exactly two unseen
    items of their own block; everything in the other block is unseen and unrelated.
    """
    dense = np.zeros((N_USERS, 2 * BLOCK), dtype=np.float32)
    for u in range(N_USERS):
        base = 0 if u < BLOCK else BLOCK
        for i in range(BLOCK):
            if i not in (u % BLOCK, (u + 3) % BLOCK):
                dense[u, base + i] = 1.0
    return sp.csr_matrix(dense)


def own_unseen(u: int) -> set[int]:
    base = 0 if u < BLOCK else BLOCK
    return {base + u % BLOCK, base + (u + 3) % BLOCK}


def skewed_matrix() -> sp.csr_matrix:
    """12 users x 8 items; item j is heard by users 0..11-j, so popularity is 12, 11, ..., 5."""
    dense = np.zeros((12, 8), dtype=np.float32)
    for j in range(8):
        dense[: 12 - j, j] = 3.0
    return sp.csr_matrix(dense)


def make(kind: str, **overrides: Any) -> Recommender:
    return model_class(kind)(**{**SMALL_PARAMS.get(kind, {}), **overrides})


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fitted(kind: str) -> Recommender:
    return make(kind).fit(block_matrix())


ALL_USERS = np.arange(N_USERS, dtype=np.int64)


# --- known answers -------------------------------------------------------------------------


def test_fit_returns_self_and_params_rebuild_it(kind: str) -> None:
    model = make(kind)
    assert model.fit(block_matrix()) is model
    assert model.n_items_ == 2 * BLOCK
    rebuilt = model_class(kind)(**model.get_params())
    assert rebuilt.get_params() == model.get_params()
    json.dumps(model.get_params())  # JSON-serialisable: it goes into model.json


@pytest.mark.parametrize("kind", [k for k in KINDS if k not in NOT_PERSONALISED])
def test_checkerboard_known_answer(kind: str, fitted: Recommender) -> None:
    ids, scores = fitted.recommend(ALL_USERS, block_matrix(), k=4)
    for u in ALL_USERS:
        assert set(ids[u, :2].tolist()) == own_unseen(int(u)), f"user {u}: {ids[u]}"
        assert scores[u, 1] > scores[u, 2]


@pytest.mark.parametrize("kind", sorted(NOT_PERSONALISED & set(KINDS)))
def test_popularity_known_answer(kind: str) -> None:
    matrix = skewed_matrix()
    model = make(kind).fit(matrix)
    users = np.array([0, 5, 11], dtype=np.int64)
    ids, scores = model.recommend(users, matrix[users], k=3)
    # user 0 heard everything; user 5 heard items 0-6 (misses 7); user 11 heard only item 0.
    np.testing.assert_array_equal(ids, [[-1, -1, -1], [7, -1, -1], [1, 2, 3]])
    np.testing.assert_array_equal(scores[2], [11.0, 10.0, 9.0])


# --- recommend / similar_items --------------------------------------------------------------


def test_recommend_shapes_and_dtypes(fitted: Recommender) -> None:
    ids, scores = fitted.recommend(ALL_USERS[:3], block_matrix()[:3], k=5)
    assert ids.shape == scores.shape == (3, 5)
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_recommend_excludes_seen_items(fitted: Recommender) -> None:
    matrix = block_matrix()
    ids, _ = fitted.recommend(ALL_USERS, matrix, k=2 * BLOCK)
    for u in ALL_USERS:
        returned = set(ids[u][ids[u] >= 0].tolist())
        assert returned.isdisjoint(matrix[u].indices.tolist())
    everything, _ = fitted.recommend(ALL_USERS, matrix, k=2 * BLOCK, exclude_seen=False)
    assert (everything >= 0).all()
    assert all(set(row.tolist()) == set(range(2 * BLOCK)) for row in everything)


def test_k_beyond_catalogue_is_padded(fitted: Recommender) -> None:
    matrix = block_matrix()
    k = 2 * BLOCK + 5
    ids, scores = fitted.recommend(ALL_USERS, matrix, k=k)
    assert ids.shape == (N_USERS, k)
    for u in ALL_USERS:
        unseen = set(range(2 * BLOCK)) - set(matrix[u].indices.tolist())
        n = len(unseen)
        assert set(ids[u, :n].tolist()) == unseen
        assert (ids[u, n:] == -1).all() and np.isneginf(scores[u, n:]).all()
        assert np.isfinite(scores[u, :n]).all()


@pytest.mark.parametrize("k", [3, 2 * BLOCK - 1, 2 * BLOCK, 2 * BLOCK + 3])
def test_similar_items_never_returns_the_item_itself(fitted: Recommender, k: int) -> None:
    items = np.arange(2 * BLOCK, dtype=np.int64)
    ids, scores = fitted.similar_items(items, k=k)
    assert ids.shape == scores.shape == (2 * BLOCK, k)
    for i in items:
        assert i not in ids[i].tolist()
        valid = ids[i] >= 0
        assert valid.sum() == min(k, 2 * BLOCK - 1)
        assert np.isfinite(scores[i][valid]).all()


def test_bad_arguments_are_refused(fitted: Recommender) -> None:
    with pytest.raises(ConfigError):
        fitted.recommend(ALL_USERS[:2], block_matrix()[:2], k=0)
    with pytest.raises(ModelError):
        fitted.recommend(ALL_USERS[:3], block_matrix()[:2], k=3)


def test_unfitted_model_raises_model_error(kind: str, tmp_path: Path) -> None:
    model = make(kind)
    rows = np.array([0], dtype=np.int64)
    with pytest.raises(ModelError):
        model.recommend(rows, block_matrix()[rows], k=3)
    with pytest.raises(ModelError):
        model.similar_items(rows, k=3)
    with pytest.raises(ModelError):
        _ = model.n_items_
    with pytest.raises(ModelError):
        model.save(tmp_path / "m")


@pytest.mark.parametrize(
    ("kind_name", "params"),
    [(k, p) for k, cases in INVALID_PARAMS.items() for p in cases],
)
def test_invalid_hyperparameters_raise_config_error(kind_name: str, params: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        make(kind_name, **params)


# --- save / load ----------------------------------------------------------------------------


def test_save_load_round_trip(kind: str, fitted: Recommender, tmp_path: Path) -> None:
    fitted.save(tmp_path / "m")
    for loaded in (load_model(tmp_path / "m"), model_class(kind).load(tmp_path / "m")):
        assert type(loaded) is type(fitted)
        assert loaded.get_params() == fitted.get_params()
        before = fitted.recommend(ALL_USERS, block_matrix(), k=7)
        after = loaded.recommend(ALL_USERS, block_matrix(), k=7)
        np.testing.assert_array_equal(before[0], after[0])
        np.testing.assert_array_equal(before[1], after[1])
        items = np.arange(4, dtype=np.int64)
        np.testing.assert_array_equal(
            fitted.similar_items(items)[0], loaded.similar_items(items)[0]
        )


def test_load_as_another_class_is_refused(kind: str, fitted: Recommender, tmp_path: Path) -> None:
    fitted.save(tmp_path / "m")
    for other in KINDS:
        if other != kind:
            with pytest.raises(ArtifactError):
                model_class(other).load(tmp_path / "m")


def _rehash(path: Path, **changes: Any) -> None:
    """Make model.json agree with a changed model.npz, as a careless copy or an attacker might."""
    meta = json.loads((path / "model.json").read_text())
    meta.update(changes)
    meta["sha256"] = sha256_file(path / "model.npz")
    (path / "model.json").write_text(json.dumps(meta))


def test_load_refuses_truncated_npz(fitted: Recommender, tmp_path: Path) -> None:
    fitted.save(tmp_path / "m")
    npz = tmp_path / "m" / "model.npz"
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    with pytest.raises(ArtifactError, match="SHA-256"):
        load_model(tmp_path / "m")
    _rehash(tmp_path / "m")  # even with a matching hash, a truncated zip is refused cleanly
    with pytest.raises(ArtifactError):
        load_model(tmp_path / "m")


def test_load_refuses_changed_npz(fitted: Recommender, tmp_path: Path) -> None:
    fitted.save(tmp_path / "m")
    npz = tmp_path / "m" / "model.npz"
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="SHA-256"):
        load_model(tmp_path / "m")


def test_load_refuses_wrong_shape_array(fitted: Recommender, tmp_path: Path) -> None:
    path = tmp_path / "m"
    fitted.save(path)
    with np.load(path / "model.npz", allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    name = sorted(arrays)[0]
    arrays[name] = np.concatenate([arrays[name], arrays[name][:1]])  # one row too many
    np.savez(path / "model.npz", **arrays)
    _rehash(path)
    with pytest.raises(ArtifactError, match="shape"):
        load_model(path)


def test_load_refuses_unknown_kind(fitted: Recommender, tmp_path: Path) -> None:
    fitted.save(tmp_path / "m")
    _rehash(tmp_path / "m", kind="no-such-model")
    with pytest.raises(ArtifactError, match="no-such-model"):
        load_model(tmp_path / "m")


UNPICKLED: list[str] = []


def _record_unpickling() -> str:
    UNPICKLED.append("code ran")
    return "payload"


class _Payload:
    """Unpickling this runs ``_record_unpickling``: the canary for code execution on load."""

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (_record_unpickling, ())


def test_load_never_unpickles(fitted: Recommender, tmp_path: Path) -> None:
    path = tmp_path / "m"
    fitted.save(path)
    with np.load(path / "model.npz", allow_pickle=False) as data:
        arrays: dict[str, Any] = {name: data[name] for name in data.files}
    name = sorted(arrays)[0]
    payload = np.empty(arrays[name].shape, dtype=object)
    payload.fill(_Payload())
    arrays[name] = payload  # same shape as model.json declares, but pickled objects
    np.savez(path / "model.npz", **arrays)
    _rehash(path)
    UNPICKLED.clear()
    with pytest.raises(ArtifactError, match="cannot read"):
        load_model(path)
    assert UNPICKLED == []


def test_histories_fold_in_like_known_users(kind: str, fitted: Recommender) -> None:
    """A user known only by their history (fold-in) gets their own block first, like a fitted
    user, and never an item of that history."""
    matrix = block_matrix()
    ids, scores = fitted.recommend_histories(matrix, k=2)
    assert ids.shape == (N_USERS, 2)
    for u in range(N_USERS):
        assert not set(ids[u].tolist()) & set(matrix[u].indices.tolist())
        if kind not in NOT_PERSONALISED:
            assert set(ids[u].tolist()) == own_unseen(u)


def test_histories_must_match_the_catalogue(fitted: Recommender) -> None:
    with pytest.raises(ModelError, match="item columns"):
        fitted.recommend_histories(sp.csr_matrix((1, 3), dtype=np.float32), k=2)


def test_empty_history_gets_an_answer(fitted: Recommender) -> None:
    ids, _ = fitted.recommend_histories(sp.csr_matrix((1, 2 * BLOCK), dtype=np.float32), k=3)
    assert ids.shape == (1, 3)


# --- declared capabilities -------------------------------------------------------------------

#: Kinds whose score is a dot product of user and item vectors (they must expose ``vectors()``).
FACTOR_KINDS = {"als", "bpr", "two_tower"}


def test_vectors_declared_exactly_for_factor_models(kind: str, fitted: Recommender) -> None:
    """``vectors()`` is not None exactly for dot-product models, and then it is the score."""
    vectors = fitted.vectors()
    assert (vectors is not None) == (kind in FACTOR_KINDS)
    if vectors is not None:
        users, items = vectors
        expected = users @ items.T
        got = fitted.score(ALL_USERS, block_matrix())
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_can_fold_in_models_fold_into_their_vector_space(kind: str, fitted: Recommender) -> None:
    """A model declaring ``can_fold_in`` maps histories to user vectors whose dot product with
    the item vectors is its fold-in score; the others refuse ``fold_in`` with a ModelError."""
    matrix = block_matrix()
    if not fitted.can_fold_in:
        with pytest.raises(ModelError, match=kind):
            fitted.fold_in(matrix)
        return
    vectors = fitted.vectors()
    assert vectors is not None
    folded = fitted.fold_in(matrix)
    assert folded.shape == (N_USERS, vectors[0].shape[1])
    np.testing.assert_allclose(
        folded @ vectors[1].T, fitted.score_histories(matrix), rtol=1e-4, atol=1e-4
    )


def test_weights_input_and_prepare_explain_are_declared(kind: str, fitted: Recommender) -> None:
    """Every model answers the capability questions without probing: a bool class attribute
    and a callable ``prepare_explain`` (a no-op unless the model has something to prepare)."""
    assert isinstance(model_class(kind).weights_input, bool)
    assert isinstance(model_class(kind).can_fold_in, bool)
    fitted.prepare_explain()
    ids, _ = fitted.recommend(ALL_USERS[:2], block_matrix()[:2], k=2)
    assert ids.shape == (2, 2)


# --- what each kind declares for tuning and training -----------------------------------------


def test_only_the_blend_is_left_out_of_direct_tuning() -> None:
    assert {k for k in KINDS if not model_class(k).tunable} == {"blend"}


@pytest.mark.parametrize("kind", [k for k in KINDS if model_class(k).tunable])
@pytest.mark.parametrize("trial_seed", [0, 1, 2])
def test_space_suggests_params_that_build_a_valid_model(kind: str, trial_seed: int) -> None:
    """Every tunable kind's search space, sampled by Optuna, constructs a model of that kind
    that fits the checkerboard; a fixed parameter is taken as given, never sampled."""
    import optuna

    from setlist.models.space import SearchSpace

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=trial_seed))
    trial = study.ask()
    first = SearchSpace(trial, kind, {}, seed=trial_seed)
    model_class(kind).search_space(first)
    params, weights = first.result()
    sampled = {n.partition(".")[2] for n in trial.params if n.startswith(f"{kind}.")}
    assert sampled - {"weighting", "alpha"} <= set(params)  # every draw lands in the spec
    model = model_class(kind)(**params)
    assert {k: model.get_params()[k] for k in params} == params
    assert model.fit(block_matrix()).n_items_ == 2 * BLOCK
    if not sampled:
        return  # nothing to search (popularity): the kind is tuned as it is
    name = next(iter(p for p in params if f"{kind}.{p}" in trial.params))
    fixed = SearchSpace(study.ask(), kind, {name: params[name]}, seed=trial_seed)
    model_class(kind).search_space(fixed)
    assert fixed.result()[0][name] == params[name]
    assert f"{kind}.{name}" not in fixed.trial.params
    if "als.weighting" in trial.params:  # a kind searching its input weighting returns it
        assert weights.scheme == trial.params["als.weighting"]


@pytest.mark.parametrize("kind", [k for k in KINDS if model_class(k).tunable])
def test_declared_costs_and_fidelity_fit_the_space(kind: str) -> None:
    """The cheapest configuration builds, its cost estimate is a positive finite number, and a
    fidelity parameter, where declared, is one of the constructor's parameters."""
    cls = model_class(kind)
    smallest = {**SMALL_PARAMS.get(kind, {}), **cls.smallest_params()}
    cls(**smallest)
    seconds = cls.estimate_seconds(smallest, block_matrix())
    assert np.isfinite(seconds) and seconds > 0
    if cls.fidelity_param is not None:
        assert cls.fidelity_param in make(kind).get_params()


def test_cli_defaults_build_each_kind() -> None:
    """``setlist train``'s defaults come from each kind and construct it (ALS's from settings)."""
    from setlist.config import Settings

    settings = Settings(factors=8, iterations=3, seed=5)
    for kind in KINDS:
        defaults = model_class(kind).defaults(settings)
        if kind != "blend":
            model_class(kind)(**defaults)
        if "seed" in defaults:
            assert defaults["seed"] == 5
    assert model_class("als").defaults(settings)["factors"] == 8
