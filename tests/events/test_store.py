"""One suite, every store: SQLite (embedded) and PostgreSQL (the real server on loopback)."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from setlist.events.schema import Event
from setlist.events.store import EventStore, open_store
from setlist.events.store.migrate import current
from setlist.events.store.postgres import PostgresEventStore, parse_url
from tests.events.conftest import make_event, private_postgres_url

Opener = Callable[[], EventStore]


@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens the same store (same file, same schema) as often as a test likes."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'events.db'}"
    else:
        url = private_postgres_url()
    opened: list[EventStore] = []

    def open_() -> EventStore:
        opened.append(open_store(url))
        return opened[-1]

    yield open_
    if request.param == "postgres":
        cleanup = open_store(url)
        assert isinstance(cleanup, PostgresEventStore)
        cleanup.drop_schema()
        cleanup.close()
    for store in opened:
        store.close()


def test_append_stores_every_field_and_reads_it_back(opener: Opener) -> None:
    store = opener()
    full = make_event(
        1,
        user_id="ユーザー/1",
        item_id="Björk",
        type="impression",
        ts=datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        play_ms=123_456,
        position=3,
        arm="treatment",
        model_version="7",
        propensity=0.125,
    )
    bare = make_event(2, type="dislike")
    assert store.append([full, bare]) == [full, bare]
    stored = store.scan()
    assert [s.event_id for s in stored] == [full.event_id, bare.event_id]
    assert Event.model_validate(stored[0].model_dump(exclude={"seq", "received_at"})) == full
    assert stored[1].play_ms is None and stored[1].propensity is None
    assert stored[0].seq < stored[1].seq
    assert stored[0].received_at.tzinfo is not None
    assert store.count() == 2


def test_playlist_events_keep_their_playlist_and_propensity(opener: Opener) -> None:
    store = opener()
    follow = make_event(1, type="playlist_follow", playlist_id="pl/7", propensity=0.25)
    play = make_event(2, type="playlist_play", playlist_id="pl/7", play_ms=1_000)
    listen = make_event(3)
    assert store.append([follow, play, listen]) == [follow, play, listen]
    stored = store.scan()
    assert [(s.type, s.playlist_id, s.propensity) for s in stored] == [
        ("playlist_follow", "pl/7", 0.25),
        ("playlist_play", "pl/7", None),
        ("listen", None, None),
    ]
    frame = store.frame(types=["playlist_follow", "playlist_play", "playlist_skip"])
    assert frame.get_column("playlist_id").to_list() == ["pl/7", "pl/7"]


def test_every_event_resent_one_to_three_times_is_stored_once(opener: Opener) -> None:
    store = opener()
    originals = [make_event(i) for i in range(300)]
    copies = [e for e in originals for _ in range(random.Random(e.event_id).randint(2, 4))]
    random.Random(0).shuffle(copies)
    new_total = 0
    for start in range(0, len(copies), 100):
        new_total += len(store.append(copies[start : start + 100]))
    assert new_total == 300
    assert store.count() == 300
    assert store.existing(e.event_id for e in originals) == {e.event_id for e in originals}
    ids = [s.event_id for s in store.scan(limit=1000)]
    assert len(ids) == len(set(ids)) == 300


def test_the_first_copy_of_an_id_wins(opener: Opener) -> None:
    store = opener()
    first = make_event(1, event_id="same", type="like")
    second = make_event(2, event_id="same", type="skip")
    assert store.append([first, second]) == [first]
    assert store.append([second]) == []
    (only,) = store.scan()
    assert only.type == "like"


def test_events_survive_closing_and_reopening(opener: Opener) -> None:
    store = opener()
    sent = [make_event(i) for i in range(50)]
    store.append(sent)
    store.close()
    again = opener()
    assert again.existing(e.event_id for e in sent) == {e.event_id for e in sent}
    assert again.append(sent[:10]) == []
    assert again.count() == 50


def test_scan_pages_in_arrival_order_and_filters_types(opener: Opener) -> None:
    store = opener()
    sent = [make_event(i, type="impression" if i % 3 == 0 else "listen") for i in range(25)]
    for start in range(0, 25, 5):
        store.append(sent[start : start + 5])
    pages, after = [], 0
    while page := store.scan(after_seq=after, limit=7):
        pages.append(page)
        after = page[-1].seq
    assert [e.event_id for page in pages for e in page] == [e.event_id for e in sent]
    shown = store.scan(types=["impression"])
    assert [e.event_id for e in shown] == [e.event_id for e in sent if e.type == "impression"]
    frame = store.frame(types=["listen"])
    assert frame.height == sum(e.type == "listen" for e in sent)
    assert frame.get_column("ts_us").is_sorted() and frame.get_column("seq").is_sorted()


def test_concurrent_writers_store_each_id_once(opener: Opener) -> None:
    store = opener()
    shared = [make_event(i) for i in range(200)]
    stored: list[int] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def writer(seed: int) -> None:
        mine = shared[:]
        random.Random(seed).shuffle(mine)
        try:
            for start in range(0, 200, 50):
                n = len(store.append(mine[start : start + 50]))
                with lock:
                    stored.append(n)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    assert sum(stored) == 200
    assert store.count() == 200


def test_schema_is_migrated_once_and_versioned(opener: Opener) -> None:
    store = opener()
    opener()  # opening again re-runs the migrations: nothing to do
    if isinstance(store, PostgresEventStore):
        conninfo, schema, _ = parse_url(store.url)
        sa_url = "postgresql+psycopg" + conninfo[len("postgresql") :]
        revision = current(sa_url, {"options": f"-c search_path={schema}"})
    else:
        revision = current(store.url)
    assert revision == "0003"  # 0001 events, 0002 API keys and the audit trail, 0003 playlist_id


def test_empty_batches_and_unknown_ids(opener: Opener) -> None:
    store = opener()
    assert store.append([]) == []
    assert store.existing(["nope"]) == set()
    assert store.scan() == []
    assert store.frame().height == 0
