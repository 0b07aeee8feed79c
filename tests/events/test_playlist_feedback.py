"""Playlist events as the organic ranker's labels (events/playlist_feedback.py)."""

from __future__ import annotations

import polars as pl

from setlist.events.playlist_feedback import MAX_IPS, actions_since, playlist_labels
from setlist.events.store.base import FRAME_SCHEMA


def _frame(rows: list[tuple[str, str, str, int, float | None]]) -> pl.DataFrame:
    """(user, playlist, type, ts, propensity) -> store rows."""
    return pl.DataFrame(
        [
            (
                i,
                f"e{i}",
                u,
                p,
                t,
                ts,
                ts,
                None,
                0,
                None,
                None,
                prop,
                p if t.startswith("playlist_") else None,
            )
            for i, (u, p, t, ts, prop) in enumerate(rows, start=1)
        ],  # fmt: skip
        schema=FRAME_SCHEMA,
        orient="row",
    )


def test_the_latest_decision_labels_a_pair_and_propensity_weighs_it() -> None:
    events = _frame(
        [
            ("u1", "p1", "playlist_impression", 10, 0.5),
            ("u1", "p1", "playlist_follow", 20, None),  # shown at 0.5: weight 2
            ("u1", "p2", "playlist_impression", 10, 0.01),  # only shown, weight clipped
            ("u1", "p3", "playlist_follow", 25, None),
            ("u1", "p3", "playlist_skip", 30, None),  # the later decision wins: skip
            ("u2", "p3", "playlist_skip", 25, 0.2),
            ("u2", "p3", "playlist_follow", 40, None),  # ... a follow after a skip: follow
            ("u2", "p4", "playlist_play", 25, 0.25),  # a play alone is 2, weight 4
            ("u2", "a9", "listen", 25, 0.2),  # not a playlist event
        ]
    )
    got = {
        (r["user_id"], r["playlist_id"]): r for r in playlist_labels(events).iter_rows(named=True)
    }
    assert {k: v["label"] for k, v in got.items()} == {
        ("u1", "p1"): 4.0, ("u1", "p2"): 0.0, ("u1", "p3"): 0.0,
        ("u2", "p3"): 4.0, ("u2", "p4"): 2.0,
    }  # fmt: skip
    assert got[("u1", "p1")]["weight"] == 2.0
    assert got[("u1", "p2")]["weight"] == MAX_IPS
    assert got[("u1", "p3")]["weight"] == 1.0  # no propensity anywhere: 1
    assert got[("u2", "p3")]["weight"] == 5.0 and got[("u2", "p4")]["weight"] == 4.0
    assert got[("u2", "p3")]["ts_us"] == 40
    # Impressions are not actions; listens are not playlist events.
    assert actions_since(events, 0) == 6 and actions_since(events, 25) == 2


def test_no_playlist_events_give_an_empty_frame() -> None:
    labels = playlist_labels(_frame([("u1", "a1", "listen", 1, None)]))
    assert labels.is_empty() and labels.columns == [
        "user_id", "playlist_id", "label", "weight", "ts_us",
    ]  # fmt: skip
