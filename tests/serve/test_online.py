"""History that arrived after training is folded into the next answer."""

from __future__ import annotations

from pathlib import Path

from setlist.bundle import ModelBundle
from setlist.serve.answer.online import InMemoryOnlineHistory
from setlist.serve.answer.state import PERSONALIZED_ONLINE, POPULAR_FALLBACK, ModelState


def _state(bundle_dir: Path) -> ModelState:
    bundle = ModelBundle.load(bundle_dir)
    from setlist.serve.answer.state import ModelInfo

    return ModelState(bundle, ModelInfo.from_bundle(bundle), online=InMemoryOnlineHistory())


def test_new_listen_is_excluded_and_shifts_taste(bundle_dir: Path) -> None:
    state = _state(bundle_dir)
    assert state.online is not None
    before = [i.item_id for i in state.recommend("u1", 3).items]
    state.online.add("u1", before[0], 10.0)
    after = state.recommend("u1", 3)
    assert after.strategy == PERSONALIZED_ONLINE
    assert before[0] not in [i.item_id for i in after.items]


def test_unknown_user_with_listens_is_folded_in(bundle_dir: Path) -> None:
    state = _state(bundle_dir)
    assert state.online is not None
    assert state.recommend("newcomer", 3).strategy == POPULAR_FALLBACK
    for item in ("x", "y"):
        state.online.add("newcomer", item, 5.0)
    recs = state.recommend("newcomer", 3)
    assert recs.strategy == PERSONALIZED_ONLINE
    ids = [i.item_id for i in recs.items]
    assert "x" not in ids and "y" not in ids
    # x and y belong to the second taste cluster: its remaining members come first.
    assert ids[0] in {"Björk", "z"}


def test_dislike_only_history_falls_back(bundle_dir: Path) -> None:
    state = _state(bundle_dir)
    assert state.online is not None
    state.online.add("someone", "a", -1.0)
    recs = state.recommend("someone", 3)
    assert recs.strategy == POPULAR_FALLBACK


def test_online_history_is_bounded() -> None:
    history = InMemoryOnlineHistory(max_users=2, max_items_per_user=2)
    for user in ("a", "b", "c"):
        for item in ("1", "2", "3"):
            history.add(user, item, 1.0)
    assert len(history) == 2
    assert history.extra("a") == {}
    assert history.extra("c") == {"2": 1.0, "3": 1.0}
