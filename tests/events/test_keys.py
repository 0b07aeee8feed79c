"""The key store and the audit trail on both databases, and `setlist keys` / `setlist audit`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from setlist.cli import app
from setlist.errors import NotFoundError, ValidationError
from setlist.events.keys import KeyStore, key_prefix, parse_scopes
from setlist.events.store.postgres import parse_url
from tests.events.conftest import private_postgres_url


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyStore]:
    if request.param == "sqlite":
        keys = KeyStore(f"sqlite:///{tmp_path / 'events.db'}", b"pepper")
        yield keys
        keys.close()
        return
    url = private_postgres_url()
    keys = KeyStore(url, b"pepper")
    yield keys
    keys.close()
    conninfo, schema, _ = parse_url(url)
    with psycopg.connect(conninfo) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_a_key_is_stored_hashed_found_by_prefix_and_revoked(store: KeyStore) -> None:
    record, key = store.create("app", "read,events", "50/minute", "cli:me", "cli")
    assert key.startswith("sl_") and len(key) == 46 and key_prefix(key) == record.prefix
    found = store.find(record.prefix)
    assert found is not None and store.matches(found, key)
    assert not store.matches(found, key[:-1] + ("A" if key[-1] != "A" else "B"))
    assert found.scopes == {"read", "events"} and found.rate == "50/minute"
    assert key not in found.hash and found.hash == store.hash(key)
    # a store under another pepper does not accept the key
    other = KeyStore(store.url, b"another pepper")
    assert not other.matches(found, key)
    other.close()
    store.touch("app")
    store.revoke("app", "cli:me", "cli")
    (listed,) = store.all()
    assert listed.revoked_at is not None and listed.last_used_at is not None
    actions = [(e.action, e.outcome.split(":")[0]) for e in store.audit_log()]
    assert actions == [("key.revoke", "ok"), ("key.create", "ok")]


def test_bad_names_scopes_rates_and_repeats_are_refused(store: KeyStore) -> None:
    store.create("app", "read", None, "t", "t")
    for name, scopes, rate, field in [
        ("app", "read", None, "name"),
        ("bad name", "read", None, "name"),
        ("ok", "read,root", None, "scopes"),
        ("ok", "", None, "scopes"),
        ("ok", "read", "lots", "rate"),
    ]:
        with pytest.raises(ValidationError) as info:
            store.create(name, scopes, rate, "t", "t")
        assert info.value.details["field"] == field
    with pytest.raises(NotFoundError):
        store.revoke("nobody", "t", "t")
    assert store.audit_log(1)[0].outcome.startswith("refused")
    assert parse_scopes(" admin , read") == {"admin", "read"}


def test_the_cli_creates_lists_revokes_and_shows_the_audit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from setlist.config import get_settings

    monkeypatch.setenv("SETLIST_HOME", str(tmp_path))
    monkeypatch.delenv("SETLIST_EVENTS_STORE_URL", raising=False)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        name = f"k{uuid.uuid4().hex[:6]}"
        made = runner.invoke(app, ["keys", "create", "--name", name, "--scopes", "read,admin"])
        assert made.exit_code == 0, made.output
        key = made.stdout.strip().splitlines()[-1]
        assert key_prefix(key) is not None  # the key alone on its own line
        listed = runner.invoke(app, ["keys", "list", "--json"])
        row = json.loads(listed.stdout.strip().splitlines()[0])
        assert row["name"] == name and row["scopes"] == "read,admin" and row["revoked"] is None
        assert key not in listed.stdout and row["prefix"] == key[:12]
        assert runner.invoke(app, ["keys", "revoke", name]).exit_code == 0
        audit = runner.invoke(app, ["audit", "--json"])
        actions = [json.loads(line)["action"] for line in audit.stdout.strip().splitlines()]
        assert actions == ["key.revoke", "key.create"] and key not in audit.stdout
    finally:
        get_settings.cache_clear()


def test_a_deployment_key_is_generated_then_stored_from_the_api_key_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from setlist.config import get_settings

    monkeypatch.setenv("SETLIST_HOME", str(tmp_path))
    monkeypatch.delenv("SETLIST_EVENTS_STORE_URL", raising=False)
    runner = CliRunner()
    key = runner.invoke(app, ["keys", "generate"]).stdout.strip()
    assert key_prefix(key) is not None
    monkeypatch.setenv("SETLIST_API_KEY", key)
    get_settings.cache_clear()
    try:
        command = ["keys", "create", "--name", "ui", "--scopes", "read", "--from-api-key"]
        for _ in range(2):  # the second run finds it stored and changes nothing
            result = runner.invoke(app, command)
            assert result.exit_code == 0, result.output
            assert key not in result.stdout
        store = KeyStore(f"sqlite:///{(tmp_path / 'events.db').resolve()}")
        (record,) = store.all()
        assert store.matches(record, key) and record.scopes == {"read"}
        store.close()
        monkeypatch.setenv("SETLIST_API_KEY", "sl_" + "Z" * 43)
        get_settings.cache_clear()
        assert runner.invoke(app, command).exit_code != 0  # another key under the same name
    finally:
        get_settings.cache_clear()
