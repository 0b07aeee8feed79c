"""Listeners the training filter dropped are still known: folded in, never sent what they heard.

Tiny data with two taste clusters: five listeners heard the "a" artists, eight (more, so the
"b" artists are the most popular) heard the "b" artists, and "short" heard only a1 and a2, too
few for ``min_user_items=3``. A stranger's answer would be the popular "b" artists; a listener
known by their history must get the rest of the "a" cluster instead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from setlist.bundle import ModelBundle
from setlist.bundle_meta import BundleMeta
from setlist.config import CleanConfig, IndexConfig, ListenerConfig, SplitConfig, WeightConfig
from setlist.data.schema import INTERACTION_SCHEMA, Dataset, empty_items
from setlist.data.validate import ValidationReport
from setlist.matrix import weight
from setlist.models import model_class
from setlist.pipeline import Prepared, prepare
from setlist.serve.answer.online import InMemoryOnlineHistory
from setlist.serve.answer.state import (
    PERSONALIZED,
    PERSONALIZED_ONLINE,
    POPULAR_FALLBACK,
    ModelInfo,
    ModelState,
    Query,
)

A = [f"a{i}" for i in range(1, 6)]
B = [f"b{i}" for i in range(1, 6)]
CATALOGUE = len(A) + len(B)


def interactions() -> pl.DataFrame:
    rows: list[tuple[str, str, float]] = []
    for u in range(5):
        rows += [(f"ua{u}", item, 3.0) for j, item in enumerate(A) if j != u % 5]
    for u in range(8):
        rows += [(f"ub{u}", item, 3.0) for j, item in enumerate(B) if j != u % 5]
    rows += [("short", "a1", 4.0), ("short", "a2", 2.0)]
    rows += [("offcat", "zz", 1.0)]  # heard only an artist nobody else did: left out
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    frame = pl.DataFrame(
        {
            "user": [r[0] for r in rows],
            "item": [r[1] for r in rows],
            "weight": [r[2] for r in rows],
            "timestamp": [ts] * len(rows),
        }
    )
    return frame.cast(INTERACTION_SCHEMA)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def prepared() -> Prepared:
    dataset = Dataset("clusters", interactions())
    return prepare(dataset, ValidationReport("x"), CleanConfig(3, 2), SplitConfig(0.2, 0))


def test_prepare_keeps_the_filtered_listeners_histories(prepared: Prepared) -> None:
    assert "short" not in prepared.train.users
    assert prepared.untrained is not None
    assert prepared.untrained.users.ids.tolist() == ["short"]  # offcat has no catalogue item
    history = prepared.untrained.csr[0]
    heard = {str(prepared.untrained.items.ids[c]) for c in history.indices}
    assert heard == {"a1", "a2"}


def _state(prepared: Prepared, kind: str, folder: Path) -> ModelState:
    params = {"factors": 4, "iterations": 10, "seed": 0} if kind == "als" else {"l2": 5.0}
    model = model_class(kind)(**params)
    weights = WeightConfig(scheme="log1p", alpha=1.0)
    model.fit(weight(prepared.train.csr, weights))
    meta = BundleMeta(model_type=kind, weighting=weights)
    bundle = ModelBundle.build(
        model, prepared.train, empty_items(), meta, untrained=prepared.untrained
    )
    bundle.save(folder)
    loaded = ModelBundle.load(folder)  # the histories travel in bundle.npz
    assert loaded.untrained_users.ids.tolist() == ["short"]
    return ModelState(loaded, ModelInfo.from_bundle(loaded), online=InMemoryOnlineHistory())


@pytest.mark.parametrize("kind", ["als", "ease"])
def test_filtered_listener_is_folded_in_without_what_they_heard(
    prepared: Prepared, kind: str, tmp_path: Path
) -> None:
    state = _state(prepared, kind, tmp_path / "b")
    stranger = state.recommend("nobody", 3)
    assert stranger.strategy == POPULAR_FALLBACK
    assert {i.item_id for i in stranger.items} <= set(B)  # the popular cluster
    recs = state.recommend("short", 3)
    assert recs.strategy == PERSONALIZED_ONLINE
    ids = [i.item_id for i in recs.items]
    assert len(ids) == 3
    assert not {"a1", "a2"} & set(ids)
    # Their own cluster leads, where a stranger gets only the popular one.
    assert set(ids[:2]) <= {"a3", "a4", "a5"}


def test_known_listener_without_usable_history_gets_popularity_minus_what_they_heard(
    prepared: Prepared, tmp_path: Path
) -> None:
    """Disliking everything they heard leaves "short" nothing to fold in: the popularity list
    answers, and it still never offers a1 or a2."""
    state = _state(prepared, "als", tmp_path / "b")
    assert state.online is not None
    for item in ("a1", "a2"):
        state.online.add("short", item, -10.0)
    recs = state.recommend("short", CATALOGUE)
    assert recs.strategy == POPULAR_FALLBACK
    ids = {i.item_id for i in recs.items}
    assert ids == set(A + B) - {"a1", "a2"}


def test_popular_fallback_never_repeats_a_trained_listeners_history(
    prepared: Prepared, tmp_path: Path
) -> None:
    state = _state(prepared, "als", tmp_path / "b")
    answerer = state.answerer
    assert answerer is not None and state.info is not None
    row = prepared.train.users.row("ua0")
    heard = {str(prepared.train.items.ids[c]) for c in prepared.train.csr[row].indices}
    assert heard  # a trained listener with history
    assert state.recommend("ua0", 3).strategy == PERSONALIZED
    recs = answerer.popular("ua0", Query(CATALOGUE, (), None), state.info.version, "test")
    assert {i.item_id for i in recs.items} == set(A + B) - heard
    stranger = answerer.popular(None, Query(CATALOGUE, (), None), state.info.version, "test")
    assert {i.item_id for i in stranger.items} == set(A + B)


@pytest.mark.parametrize("indexed", [False, True])
def test_filtered_listener_gets_buddies_from_their_history(
    prepared: Prepared, indexed: bool, tmp_path: Path
) -> None:
    """ "short" has no row among the listeners, yet their history finds the "a" cluster, by
    exact search and through the listener index alike."""
    state = _state(prepared, "als", tmp_path / "b")
    assert state.bundle is not None
    if indexed:
        state.bundle.build_listeners(IndexConfig(listeners=ListenerConfig(dims=4)))
    assert state.buddy_finder().indexed is indexed
    found = state.buddy_finder().for_user("short", 3)
    assert len(found) == 3
    assert all(b.user_id.startswith("ua") for b in found)
    assert all({i for i, _ in b.shared} <= {"a1", "a2"} for b in found)
