"""`train --with-events`: stored events become weighted training rows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from setlist.data.schema import INTERACTION_SCHEMA, Dataset
from setlist.events.store import open_store
from setlist.events.training import merge_events
from tests.events.conftest import make_event


def base() -> Dataset:
    frame = pl.DataFrame(
        {
            "user": ["u1", "u1", "u2"],
            "item": ["a", "b", "a"],
            "weight": [10.0, 1.0, 3.0],
            "timestamp": [None, None, None],
        },
        schema=INTERACTION_SCHEMA,
    )
    return Dataset("base", frame)


def test_events_are_weighted_merged_and_filtered(tmp_path: Path) -> None:
    ts = datetime(2025, 1, 1, tzinfo=UTC)
    events = [
        make_event(1, user_id="u1", item_id="a", type="listen", ts=ts),  # +1 -> 11
        make_event(2, user_id="u1", item_id="b", type="skip", ts=ts),  # 1 - 0.5 -> 0.5
        make_event(3, user_id="u1", item_id="b", type="skip", ts=ts),  # -> 0: dropped
        make_event(4, user_id="u2", item_id="a", type="dislike", ts=ts),  # removed
        make_event(5, user_id="u3", item_id="c", type="like", ts=ts),  # new pair, 5
        make_event(6, user_id="u3", item_id="d", type="impression", ts=ts),  # ignored
        make_event(7, user_id="u3", item_id="e", type="listen", play_ms=3000, ts=ts),  # skip
        make_event(8, user_id="u3", item_id="f", type="playlist_add", ts=ts),  # 3
        # a shown playlist is exposure, not taste: weighs nothing, adds no pair
        make_event(
            9, user_id="u1", item_id="a", type="playlist_impression", playlist_id="a", ts=ts
        ),
    ]
    with open_store(f"sqlite:///{tmp_path / 'e.db'}") as store:
        store.append(events)
        frame = store.frame()
    merged, report = merge_events(base(), frame)
    rows = {
        (r["user"], r["item"]): r["weight"]
        for r in merged.interactions.select("user", "item", "weight").to_dicts()
    }
    assert rows == {("u1", "a"): 11.0, ("u3", "c"): 5.0, ("u3", "f"): 3.0}
    assert report.events == 9 and report.pairs_disliked == 1 and report.pairs_dropped == 2
    assert report.pairs_added == 3  # u3/c, u3/e (then dropped), u3/f
    assert merged.interactions.schema == pl.Schema(INTERACTION_SCHEMA)
    assert merged.name == "base+events"
