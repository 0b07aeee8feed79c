"""API keys with scopes, and the audit trail, stored in the event store's database.

A key is ``sl_`` and 43 URL-safe characters (256 random bits). It is shown once, at creation;
the database keeps its first :data:`PREFIX_LENGTH` characters (to find the record, and to show
in ``setlist keys list``) and an HMAC-SHA256 of the whole key under the ``auth_pepper`` setting
(a keyed hash: a copy of the database alone does not let anyone test guesses offline, and the
key's 256 bits would make guessing hopeless anyway). A presented key is looked up by its prefix
and its hash compared in constant time (:func:`hmac.compare_digest`).

Keys live in the same database as the events (SQLite or PostgreSQL, created by the Alembic
migration ``0002``), so a revocation made by ``setlist keys revoke`` on any machine is seen by
every worker and replica as soon as their cached lookup expires (``auth_cache_s``, 5 s).

Scopes: ``read`` (recommendations, catalogue, stats, playlists), ``events`` (``POST
/v1/events``), ``admin`` (model management). A scope does not imply another: an admin key that
should also read is created with ``read,admin`` (least privilege by default).

The audit table records who (a key's name, or ``cli:USER``), what, when, from where and the
outcome of key creation, revocation and every admin action or refused admin attempt.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import re
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from setlist.errors import ConfigError, NotFoundError, ValidationError
from setlist.events.store import migrate
from setlist.events.store.base import from_us, to_us

SCOPES: tuple[str, ...] = ("read", "events", "admin")
KEY_TABLE = "setlist_api_keys"
AUDIT_TABLE = "setlist_audit"
KEY_MARK = "sl_"
PREFIX_LENGTH = 12  # "sl_" and 9 random characters: 54 bits, unique by constraint
# Without the auth_pepper setting the hash is keyed by this constant: still unguessable (the key
# holds 256 random bits), but a database copy then suffices to check a stolen key.
DEFAULT_PEPPER = b"setlist-api-keys-v1"
KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
RATE = re.compile(r"^\d{1,9}\s*/\s*\d{0,6}\s*(second|minute|hour|day)s?$")
_KEY_SHAPE = re.compile(r"^sl_[A-Za-z0-9_-]{43}$")

_meta = sa.MetaData()
keys_table = sa.Table(
    KEY_TABLE,
    _meta,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("prefix", sa.String(16)),
    sa.Column("hash", sa.String(64)),
    sa.Column("scopes", sa.String(64)),
    sa.Column("rate", sa.String(32)),
    sa.Column("created_us", sa.BigInteger()),
    sa.Column("last_used_us", sa.BigInteger()),
    sa.Column("revoked_us", sa.BigInteger()),
)
audit_table = sa.Table(
    AUDIT_TABLE,
    _meta,
    sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
    sa.Column("at_us", sa.BigInteger()),
    sa.Column("actor", sa.String(64)),
    sa.Column("action", sa.String(64)),
    sa.Column("target", sa.String(256)),
    sa.Column("source", sa.String(128)),
    sa.Column("outcome", sa.String(256)),
)


@dataclass(frozen=True)
class ApiKey:
    """A key's record (never the key itself)."""

    name: str
    prefix: str
    scopes: frozenset[str]
    rate: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    hash: str = ""

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def public(self) -> dict[str, Any]:
        """What ``setlist keys list`` and the audit views show (no hash)."""
        return {
            "name": self.name,
            "prefix": self.prefix,
            "scopes": ",".join(s for s in SCOPES if s in self.scopes),
            "rate": self.rate,
            "created": self.created_at.isoformat(timespec="seconds"),
            "last_used": self.last_used_at.isoformat(timespec="seconds")
            if self.last_used_at
            else None,
            "revoked": self.revoked_at.isoformat(timespec="seconds") if self.revoked_at else None,
        }


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    target: str | None
    source: str | None
    outcome: str

    def public(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(timespec="seconds"),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "source": self.source,
            "outcome": self.outcome,
        }


def parse_scopes(text: str | Iterable[str]) -> frozenset[str]:
    parts = text.split(",") if isinstance(text, str) else list(text)
    scopes = frozenset(p.strip() for p in parts if p.strip())
    unknown = sorted(scopes - set(SCOPES))
    if unknown or not scopes:
        raise ValidationError(
            f"scopes: {','.join(unknown) or 'none given'}; use some of {','.join(SCOPES)}",
            field="scopes",
            value=",".join(sorted(scopes)),
        )
    return scopes


def check_rate(rate: str, field: str = "rate") -> str:
    """A rate in the ``limits`` notation (``1000/minute``, ``10/second``)."""
    if not RATE.match(rate.strip()):
        raise ValidationError(
            f"{field}: {rate!r} is not a rate like 1000/minute", field=field, value=rate
        )
    return rate.strip()


def key_prefix(key: str) -> str | None:
    """The lookup prefix of a presented key, or None when it cannot be one of ours."""
    return key[:PREFIX_LENGTH] if _KEY_SHAPE.match(key) else None


def new_key() -> str:
    return KEY_MARK + secrets.token_urlsafe(32)


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name (some containers)
        return "cli"


class KeyStore:
    """API keys and the audit trail in the event store's database (SQLAlchemy Core)."""

    def __init__(self, url: str, pepper: bytes | None = None) -> None:
        self.url = url
        self.pepper = pepper or DEFAULT_PEPPER
        sa_url, connect_args = _engine_args(url)
        migrate.upgrade(sa_url, connect_args)
        self.engine = sa.create_engine(sa_url, connect_args=connect_args, pool_pre_ping=True)
        self._lock = threading.Lock()

    def close(self) -> None:
        self.engine.dispose()

    def hash(self, key: str) -> str:
        return hmac.new(self.pepper, key.encode("utf-8"), hashlib.sha256).hexdigest()

    def create(
        self,
        name: str,
        scopes: Iterable[str] | str,
        rate: str | None,
        actor: str,
        source: str,
        given: str | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key: its record and the key itself (shown once, stored only hashed).

        ``given``: store this key (made earlier by ``setlist keys generate`` or kept in a
        deployment's secret) instead of drawing one.
        """
        if not KEY_NAME.match(name):
            raise ValidationError(
                f"name: {name!r} must be 1-64 letters, digits, '_', '.' or '-'",
                field="name",
                value=name,
            )
        wanted = parse_scopes(scopes)
        rate = check_rate(rate) if rate else None
        if given is not None and key_prefix(given) is None:
            raise ValidationError(
                "key: not a setlist key (sl_ and 43 URL-safe characters)", field="key"
            )
        key = given or new_key()
        now = to_us(datetime.now(UTC))
        row = {
            "name": name,
            "prefix": key[:PREFIX_LENGTH],
            "hash": self.hash(key),
            "scopes": ",".join(s for s in SCOPES if s in wanted),
            "rate": rate,
            "created_us": now,
            "last_used_us": None,
            "revoked_us": None,
        }
        with self.engine.begin() as conn:
            taken = conn.execute(
                sa.select(keys_table.c.name).where(keys_table.c.name == name)
            ).first()
            if not taken:
                conn.execute(keys_table.insert().values(**row))
                self._audit(conn, actor, "key.create", name, source, f"ok: scopes {row['scopes']}")
        if taken:  # audited in a transaction of its own: a raise inside would roll it back
            self.audit(actor, "key.create", name, source, "refused: name taken")
            raise ValidationError(
                f"name: a key named {name!r} exists (revoked keys keep their name)",
                field="name",
                value=name,
            )
        return _record(row), key

    def revoke(self, name: str, actor: str, source: str) -> ApiKey:
        with self.engine.begin() as conn:
            found = self._by(conn, keys_table.c.name == name)
            if found is not None:
                if found.revoked_at is None:
                    now = to_us(datetime.now(UTC))
                    conn.execute(
                        keys_table.update().where(keys_table.c.name == name).values(revoked_us=now)
                    )
                    found = self._by(conn, keys_table.c.name == name)
                self._audit(conn, actor, "key.revoke", name, source, "ok")
        if found is None:
            self.audit(actor, "key.revoke", name, source, "refused: no such key")
            raise NotFoundError(f"no key named {name!r}", field="name", value=name)
        return found

    def all(self) -> list[ApiKey]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(keys_table).order_by(keys_table.c.created_us))
            return [_record(dict(r._mapping)) for r in rows]

    def find(self, prefix: str) -> ApiKey | None:
        """The record a key prefix names (revoked ones too), hash included."""
        with self.engine.connect() as conn:
            return self._by(conn, keys_table.c.prefix == prefix)

    def matches(self, record: ApiKey, key: str) -> bool:
        """Whether ``key`` is the key of ``record`` (constant-time comparison)."""
        return hmac.compare_digest(record.hash, self.hash(key))

    def touch(self, name: str) -> None:
        """Mark a key used now (callers throttle: at most once per cache period)."""
        now = to_us(datetime.now(UTC))
        with self.engine.begin() as conn:
            conn.execute(
                keys_table.update().where(keys_table.c.name == name).values(last_used_us=now)
            )

    def audit(
        self, actor: str, action: str, target: str | None, source: str | None, outcome: str
    ) -> None:
        with self.engine.begin() as conn:
            self._audit(conn, actor, action, target, source, outcome)

    def audit_log(self, limit: int = 100) -> list[AuditEntry]:
        """The newest ``limit`` entries, newest first."""
        query = sa.select(audit_table).order_by(audit_table.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [
                AuditEntry(
                    at=from_us(r.at_us),
                    actor=r.actor,
                    action=r.action,
                    target=r.target,
                    source=r.source,
                    outcome=r.outcome,
                )
                for r in conn.execute(query)
            ]

    @staticmethod
    def _by(conn: sa.Connection, where: Any) -> ApiKey | None:
        row = conn.execute(sa.select(keys_table).where(where)).first()
        return _record(dict(row._mapping)) if row is not None else None

    @staticmethod
    def _audit(
        conn: sa.Connection,
        actor: str,
        action: str,
        target: str | None,
        source: str | None,
        outcome: str,
    ) -> None:
        conn.execute(
            audit_table.insert().values(
                at_us=to_us(datetime.now(UTC)),
                actor=actor[:64],
                action=action[:64],
                target=None if target is None else target[:256],
                source=None if source is None else source[:128],
                outcome=outcome[:256],
            )
        )


def _record(row: dict[str, Any]) -> ApiKey:
    return ApiKey(
        name=row["name"],
        prefix=row["prefix"],
        scopes=frozenset(s for s in str(row["scopes"]).split(",") if s),
        rate=row["rate"],
        created_at=from_us(row["created_us"]),
        last_used_at=from_us(row["last_used_us"]) if row["last_used_us"] is not None else None,
        revoked_at=from_us(row["revoked_us"]) if row["revoked_us"] is not None else None,
        hash=row["hash"],
    )


def _engine_args(url: str) -> tuple[str, dict[str, Any]]:
    """A SQLAlchemy URL and connect arguments for an event store URL."""
    if url.startswith("sqlite:"):
        from setlist.events.store.sqlite import sqlite_path

        path = sqlite_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}", {"timeout": 30.0}
    if url.startswith(("postgresql:", "postgres:", "postgresql+psycopg:")):
        from setlist.events.store.postgres import parse_url

        conninfo, schema, _ = parse_url(url)
        import psycopg

        with psycopg.connect(conninfo, connect_timeout=5) as conn:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            conn.commit()
        sa_url = "postgresql+psycopg" + conninfo[len("postgresql") :]
        return sa_url, {"options": f"-c search_path={schema}"}
    raise ConfigError(f"unknown event store URL {url!r}", field="events_store_url")
