"""The production event store: PostgreSQL through psycopg 3.

A batch is one ``INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING RETURNING`` and
one ``COMMIT`` (durable with the server's default ``synchronous_commit=on``), so a batch of 100
costs one round trip and one WAL flush. A small pool of connections lets concurrent requests
commit in parallel; the unique constraint on ``event_id`` makes two racing copies of one event
store once (the second waits for the first, then does nothing).

URL: ``postgresql://user@host:port/db`` plus two options of setlist's own, removed before
connecting: ``schema=NAME`` (the tables live in that schema, created if needed; tests use a
private one) and ``pool=N`` (connections, default 4).
"""

from __future__ import annotations

import queue
import random
import re
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg

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

_TYPES = ("text", "text", "text", "text", "bigint", "bigint", "bigint", "int", "text", "text")
_ARRAY_TYPES = (*_TYPES, "float8", "text")
_DEADLOCK_RETRIES = 10  # a deadlock victim goes again after a random, growing pause
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def parse_url(url: str) -> tuple[str, str, int]:
    """(libpq URL without setlist's options, schema, pool size)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise ConfigError(f"not a PostgreSQL URL: {url!r}", field="events_store_url")
    query = dict(parse_qsl(parts.query))
    schema = query.pop("schema", "public")
    if not _SCHEMA_NAME.match(schema):
        raise ConfigError(f"schema must be a plain identifier, got {schema!r}", field="schema")
    try:
        pool = int(query.pop("pool", "4"))
    except ValueError:
        raise ConfigError(f"pool must be an integer in {url!r}", field="pool") from None
    if not 1 <= pool <= 64:
        raise ConfigError(f"pool must be between 1 and 64, got {pool}", field="pool")
    clean = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(query), ""))
    return clean, schema, pool


class PostgresEventStore(EventStore):
    def __init__(self, url: str, connect_timeout: float = 5.0) -> None:
        self.url = url
        self._conninfo, self.schema, size = parse_url(url)
        self._timeout = connect_timeout
        self._bootstrap()
        self._pool: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()
        self._all: list[psycopg.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(size):
            conn = self._connect()
            self._all.append(conn)
            self._pool.put(conn)
        self._insert_sql = self._build_insert()

    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(
                self._conninfo,
                connect_timeout=max(1, int(self._timeout)),
                options=f"-c search_path={self.schema}",
            )
        except psycopg.OperationalError as exc:
            raise UnavailableError(f"cannot connect to PostgreSQL at {self.url}: {exc}") from exc

    def _bootstrap(self) -> None:
        """Create the schema if needed, then run the migrations inside it."""
        with self._connect() as conn:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            conn.commit()
        sa_url = "postgresql+psycopg" + self._conninfo[len("postgresql") :]
        migrate.upgrade(sa_url, {"options": f"-c search_path={self.schema}"})

    def _build_insert(self) -> str:
        arrays = ", ".join(f"%s::{t}[]" for t in _ARRAY_TYPES)
        return (
            f"INSERT INTO {TABLE} ({', '.join(INSERT_COLUMNS)}) "
            f"SELECT * FROM unnest({arrays}) "
            "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
        )

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection]:
        if self._closed:
            raise UnavailableError(f"event store {self.url} is closed")
        conn = self._pool.get()
        try:
            if conn.closed:
                conn = self._replace(conn)
            yield conn
        except psycopg.errors.DeadlockDetected:
            raise
        except psycopg.OperationalError as exc:
            conn = self._replace(conn)
            raise UnavailableError(f"PostgreSQL event store failed: {exc}") from exc
        finally:
            self._pool.put(conn)

    def _replace(self, broken: psycopg.Connection) -> psycopg.Connection:
        """A fresh connection for one that died (the server restarted, the network dropped)."""
        broken.close()
        fresh = self._connect()
        with self._lock:
            self._all = [fresh if c is broken else c for c in self._all]
        return fresh

    def append(self, events: Sequence[Event]) -> list[Event]:
        batch = unique_by_id(events)
        if not batch:
            return []
        rows = insert_rows(batch, datetime.now(UTC))
        columns = [list(col) for col in zip(*rows, strict=True)]
        for attempt in range(_DEADLOCK_RETRIES):
            try:
                new = self._insert(columns)
                break
            except psycopg.errors.DeadlockDetected:
                # Two batches sharing ids in different orders: one is rolled back; go again.
                # The pause is random (jitter): victims that wait alike collide alike again,
                # which a loaded machine showed with fixed pauses. Batch order is kept (it is
                # the events' seq order), so the locks cannot be taken in one global order.
                if attempt == _DEADLOCK_RETRIES - 1:
                    raise
                time.sleep(random.uniform(0.005, 0.02) * (attempt + 1))  # nosec B311
        return [e for e in batch if e.event_id in new]

    def _insert(self, columns: list[list[object]]) -> set[str]:
        with self._conn() as conn:
            try:
                with conn.cursor() as cur:
                    cur.execute(self._insert_sql, columns)
                    new = {r[0] for r in cur.fetchall()}
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        return new

    def existing(self, event_ids: Iterable[str]) -> set[str]:
        ids = list(dict.fromkeys(event_ids))
        with self._conn() as conn:
            found = conn.execute(
                f"SELECT event_id FROM {TABLE} WHERE event_id = ANY(%s::text[])", [ids]
            ).fetchall()
            conn.rollback()
        return {r[0] for r in found}

    def count(self) -> int:
        with self._conn() as conn:
            row = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()
            conn.rollback()
        return int(row[0]) if row else 0

    def rows(self, after_seq: int, limit: int, types: Sequence[str] | None = None) -> list[Row]:
        where = "seq > %s" + (" AND type = ANY(%s::text[])" if types else "")
        params: list[object] = [after_seq, *([list(types)] if types else []), limit]
        sql = f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE {where} ORDER BY seq LIMIT %s"
        with self._conn() as conn:
            found = conn.execute(sql, params).fetchall()
            conn.rollback()
        return [tuple(r) for r in found]

    def drop_schema(self) -> None:
        """Drop this store's schema with everything in it (tests clean up their private schema)."""
        if self.schema == "public":
            raise ConfigError("refusing to drop the public schema")
        with self._conn() as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
            conn.commit()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for conn in self._all:
                conn.close()
