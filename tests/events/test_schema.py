"""Parsing event bodies: accepted shapes, times, limits; every refusal names its field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from setlist.errors import MalformedError, TooLargeError, ValidationError
from setlist.events.schema import MAX_BATCH, MAX_BODY_BYTES, parse_body, parse_data

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def body(**overrides: object) -> dict[str, object]:
    out: dict[str, object] = {
        "event_id": "e1",
        "user_id": "u",
        "item_id": "i",
        "type": "listen",
        "ts": "2025-06-01T11:59:00Z",
    }
    out.update(overrides)
    return out


def test_three_shapes_one_meaning() -> None:
    single = parse_data(body(), now=NOW)
    batch = parse_data({"events": [body()]}, now=NOW)
    array = parse_data([body()], now=NOW)
    assert single.events == batch.events == array.events
    assert not single.batch and batch.batch and array.batch


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("2025-06-01T11:00:00", datetime(2025, 6, 1, 11, tzinfo=UTC)),  # naive means UTC
        ("2025-06-01T13:00:00+02:00", datetime(2025, 6, 1, 11, tzinfo=UTC)),
        (1748775600, datetime(2025, 6, 1, 11, tzinfo=UTC)),  # epoch seconds
    ],
)
def test_times_are_read_as_utc(ts: object, expected: datetime) -> None:
    (event,) = parse_data(body(ts=ts), now=NOW).events
    assert event.ts == expected and event.ts.tzinfo == UTC


def test_the_future_limit_is_a_setting() -> None:
    ahead = (NOW + timedelta(minutes=10)).isoformat()
    with pytest.raises(ValidationError) as refused:
        parse_data(body(ts=ahead), now=NOW)
    assert refused.value.details["field"] == "ts"
    assert parse_data(body(ts=ahead), now=NOW, max_future_s=3600).events


def test_limits_of_size() -> None:
    with pytest.raises(TooLargeError) as too_many:
        parse_data([body(event_id=str(i)) for i in range(MAX_BATCH + 1)], now=NOW)
    assert too_many.value.details["field"] == "events"
    with pytest.raises(TooLargeError):
        parse_body(b" " * (MAX_BODY_BYTES + 1))
    with pytest.raises(MalformedError) as bad:
        parse_body(b'{"events": [}')
    assert "line 1, column 13" in bad.value.message


def test_only_the_first_problem_is_named_and_the_rest_counted() -> None:
    with pytest.raises(ValidationError) as refused:
        parse_data({"events": [body(), body(type="nope", user_id="")]}, now=NOW)
    assert refused.value.details["field"] == "events.1.user_id"
    assert refused.value.details["problems"] == 2


def test_playlist_events_carry_a_playlist_and_only_they_do() -> None:
    follow = body(event_id="e2", type="playlist_follow", playlist_id="pl1", propensity=0.2)
    parsed = parse_data({"events": [follow, body()]}, now=NOW).events
    assert parsed[0].playlist_id == "pl1" and parsed[0].propensity == 0.2
    assert parsed[1].playlist_id is None
    with pytest.raises(ValidationError) as missing:
        parse_data({"events": [body(), body(type="playlist_skip")]}, now=NOW)
    assert missing.value.details["field"] == "events.1.playlist_id"
    assert "required on a playlist_skip" in missing.value.message
    with pytest.raises(ValidationError) as stray:
        parse_data(body(playlist_id="pl1"), now=NOW)
    assert stray.value.details["field"] == "playlist_id"
    assert stray.value.details["value"] == "pl1"


def test_a_playlist_impression_is_a_playlist_event() -> None:
    shown = body(type="playlist_impression", item_id="pl1", playlist_id="pl1", position=3)
    (event,) = parse_data(shown, now=NOW).events
    assert event.type == "playlist_impression" and event.playlist_id == "pl1"
    assert event.position == 3
    with pytest.raises(ValidationError) as missing:
        parse_data(body(type="playlist_impression", item_id="pl1"), now=NOW)
    assert missing.value.details["field"] == "playlist_id"
    assert "required on a playlist_impression" in missing.value.message
