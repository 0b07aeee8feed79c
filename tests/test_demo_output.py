"""What `setlist demo` and `setlist train` print: the listener shown, the champion marked."""

from __future__ import annotations

from setlist.cli.train import champion_marks, first_user


def test_the_demo_points_at_the_lowest_listener_id() -> None:
    # the id map keeps ids sorted as text: HetRec's first row is "10", its first listener 2
    assert first_user(["10", "100", "2", "3"]) == "2"
    assert first_user(["b", "10", "a"]) == "10"  # numbers first, then text
    assert first_user(["user_b", "user_a"]) == "user_a"
    assert first_user([]) == "unknown"


def test_only_the_last_promoted_model_is_marked_champion() -> None:
    # popularity promoted (no champion yet), then ALS beat it: ALS alone holds the alias
    assert champion_marks([True, True]) == ["replaced", "yes"]
    assert champion_marks([True, False]) == ["yes", "no"]
    assert champion_marks([False, False]) == ["no", "no"]
    assert champion_marks([False, True, False]) == ["no", "yes", "no"]
