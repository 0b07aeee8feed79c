"""The embedded event store: one SQLite file in WAL mode with ``synchronous=FULL``.

WAL lets readers run while one writer appends; ``synchronous=FULL`` fsyncs the log at every
commit, so an acknowledged batch survives a killed process and a power cut alike. Writes go
through one connection under a lock (SQLite has one writer at a time anyway); each read opens
its own short-lived connection, so readers never wait for the writer's lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from setlist.errors import ConfigError, UnavailableError
from setlist.events.schema import Event
from setlist.events.store import migrate
from setlist.events.store.base import (
    COLUMNS,
    INSERT_COLUMNS,
    TABLE,
    EventStore,
    Row,
    insert_rows,
    unique_by_id,
)

_CHUNK = 500  # rows per INSERT statement: 500 x 12 parameters stays under SQLite's limit


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///relative/path`` or ``sqlite:////absolute/path`` URL."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ConfigError(f"not a SQLite URL with a file path: {url!r}", field="events_store_url")
    return Path(url[len(prefix) :])


class SQLiteEventStore(EventStore):
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        migrate.upgrade(f"sqlite:///{self.path}")
        self._lock = threading.Lock()
        self._writer = self._connect()
        self._closed = False

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def append(self, events: Sequence[Event]) -> list[Event]:
        batch = unique_by_id(events)
        if not batch:
            return []
        rows = insert_rows(batch, datetime.now(UTC))
        new: set[str] = set()
        with self._lock:
            writer = self._writer_or_fail()
            writer.execute("BEGIN IMMEDIATE")
            try:
                for start in range(0, len(rows), _CHUNK):
                    new.update(self._insert(writer, rows[start : start + _CHUNK]))
                writer.execute("COMMIT")
            except BaseException:
                writer.execute("ROLLBACK")
                raise
        return [e for e in batch if e.event_id in new]

    @staticmethod
    def _insert(writer: sqlite3.Connection, rows: list[Row]) -> list[str]:
        one = "(" + ",".join("?" * len(INSERT_COLUMNS)) + ")"
        sql = (
            f"INSERT INTO {TABLE} ({','.join(INSERT_COLUMNS)}) VALUES "
            f"{','.join([one] * len(rows))} ON CONFLICT(event_id) DO NOTHING RETURNING event_id"
        )
        params = [value for row in rows for value in row]
        return [r[0] for r in writer.execute(sql, params).fetchall()]

    def _writer_or_fail(self) -> sqlite3.Connection:
        if self._closed:
            raise UnavailableError(f"event store {self.url} is closed")
        return self._writer

    def existing(self, event_ids: Iterable[str]) -> set[str]:
        ids = list(dict.fromkeys(event_ids))
        found: set[str] = set()
        with self._reader() as conn:
            for start in range(0, len(ids), _CHUNK):
                part = ids[start : start + _CHUNK]
                sql = (
                    f"SELECT event_id FROM {TABLE} WHERE event_id IN ({','.join('?' * len(part))})"
                )
                found.update(r[0] for r in conn.execute(sql, part))
        return found

    def count(self) -> int:
        with self._reader() as conn:
            return int(conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0])

    def rows(self, after_seq: int, limit: int, types: Sequence[str] | None = None) -> list[Row]:
        where = "seq > ?"
        params: list[object] = [after_seq]
        if types:
            where += f" AND type IN ({','.join('?' * len(types))})"
            params += list(types)
        sql = f"SELECT {','.join(COLUMNS)} FROM {TABLE} WHERE {where} ORDER BY seq LIMIT ?"
        with self._reader() as conn:
            return [tuple(r) for r in conn.execute(sql, [*params, limit])]

    def _reader(self) -> _Reader:
        if self._closed:
            raise UnavailableError(f"event store {self.url} is closed")
        return _Reader(self.path)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._writer.close()


class _Reader:
    """A read-only connection for one call, closed on exit (sqlite3's own ``with`` only commits)."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=30.0)

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()
