"""`setlist keys create|list|revoke` and `setlist audit`: API keys and the audit trail.

Keys and the audit trail live in the event store's database (``events_store_url``), so these
commands act on every worker and replica that shares it; a revocation is seen by the service
within ``auth_cache_s`` seconds.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from setlist.cli.common import app, console, settings_with
from setlist.events.keys import KeyStore

keys_app = typer.Typer(help="API keys with scopes (stored hashed).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _store() -> KeyStore:

    settings = settings_with()
    pepper = settings.auth_pepper.get_secret_value().encode() if settings.auth_pepper else None
    return KeyStore(settings.events().store_url, pepper)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="The key's name (shown in logs and the audit).")],
    scopes: Annotated[str, typer.Option(help="Comma-separated: read, events, admin.")] = "read",
    rate: Annotated[
        str | None, typer.Option(help="Its quota, e.g. 1000/minute (default: rate_limit_key).")
    ] = None,
    from_api_key: Annotated[
        bool, typer.Option("--from-api-key", help="Store the key in SETLIST_API_KEY.")
    ] = False,
) -> None:
    """Create a key and print it, alone on the last line, once: it is stored only hashed.

    With --from-api-key, store the key in SETLIST_API_KEY instead (a deployment's secret, made
    with `setlist keys generate`); run again with the same key, it changes nothing.
    """
    from setlist.events.keys import cli_actor

    settings = settings_with()
    given = settings.api_key.get_secret_value() if from_api_key and settings.api_key else None
    if from_api_key and given is None:
        raise typer.BadParameter("--from-api-key: SETLIST_API_KEY is not set")
    store = _store()
    try:
        existing = next((k for k in store.all() if k.name == name), None)
        if given is not None and existing is not None and store.matches(existing, given):
            typer.echo(f"key {name!r} is stored already", err=True)
            return
        record, key = store.create(name, scopes, rate, cli_actor(), "cli", given)
    finally:
        store.close()
    if given is not None:
        typer.echo(f"stored key {record.name!r} from SETLIST_API_KEY", err=True)
        return
    scoped = ",".join(sorted(record.scopes))
    typer.echo(f"key {record.name!r} (scopes {scoped}); it is shown once, store it now:", err=True)
    typer.echo(key)


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new random key and store nothing (for a deployment's secret; see --from-api-key)."""
    from setlist.events.keys import new_key

    typer.echo(new_key())


@keys_app.command("list")
def keys_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per key.")] = False,
) -> None:
    """Every key: name, prefix, scopes, quota, created, last used, revoked (never the key)."""
    store = _store()
    try:
        records = store.all()
    finally:
        store.close()
    if as_json:
        for record in records:
            typer.echo(json.dumps(record.public()))
        return
    table = Table("name", "prefix", "scopes", "rate", "created", "last used", "revoked")
    for record in records:
        row = record.public()
        table.add_row(
            *(str(row[c] or "") for c in ("name", "prefix", "scopes", "rate")),
            row["created"],
            row["last_used"] or "",
            row["revoked"] or "",
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke a key: refused by every worker and replica within auth_cache_s seconds."""
    from setlist.events.keys import cli_actor

    store = _store()
    try:
        record = store.revoke(name, cli_actor(), "cli")
    finally:
        store.close()
    console.print(f"revoked {record.name!r} at {record.revoked_at:%Y-%m-%d %H:%M:%S}")


@app.command()
def audit(
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Newest entries shown.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per entry.")] = False,
) -> None:
    """The audit trail, newest first: key creation and revocation, admin actions and refusals."""
    store = _store()
    try:
        entries = store.audit_log(limit)
    finally:
        store.close()
    if as_json:
        for entry in entries:
            typer.echo(json.dumps(entry.public()))
        return
    table = Table("at", "actor", "action", "target", "source", "outcome")
    for entry in entries:
        row = entry.public()
        table.add_row(
            *(str(row[c] or "") for c in ("at", "actor", "action", "target", "source", "outcome"))
        )
    console.print(table)
