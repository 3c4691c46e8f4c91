"""``settlement keys``: API keys (shown once at creation, stored hashed)."""

from __future__ import annotations

import typer
from rich.table import Table

from settlement.auth.service import Scope, create_key, list_keys, revoke_key
from settlement.cli.common import console, state
from settlement.db import unit_of_work

app = typer.Typer(help="API keys and their scopes.", no_args_is_help=True)


@app.command("create")
def create(ctx: typer.Context,
           scope: list[Scope] = typer.Option(..., "--scope", "-s", help="repeat for several scopes"),
           name: str = typer.Option("api key", "--name", "-n")) -> None:
    """Create a key and print it once; only its hash is stored."""
    with unit_of_work(state(ctx).factory) as session:
        key, record = create_key(session, name, [s.value for s in scope])
        key_id = record.id
    console.print(f"key {key_id} ({', '.join(s.value for s in scope)}), shown only now:", markup=False)
    console.print(key, markup=False)


@app.command("list")
def list_command(ctx: typer.Context) -> None:
    """List keys (prefix, scopes, revoked or not)."""
    with unit_of_work(state(ctx).factory) as session:
        rows = [(k.id, k.name, k.prefix, ", ".join(k.scopes), k.created_at, k.revoked_at) for k in list_keys(session)]
    table = Table("id", "name", "prefix", "scopes", "created", "revoked")
    for key_id, name, prefix, scopes, created, revoked in rows:
        table.add_row(str(key_id), name, prefix + "...", scopes, created.isoformat(timespec="seconds"),
                      revoked.isoformat(timespec="seconds") if revoked else "")
    console.print(table)


@app.command("revoke")
def revoke(ctx: typer.Context, key_id: int = typer.Argument(...)) -> None:
    """Revoke a key: it stops working at once."""
    with unit_of_work(state(ctx).factory) as session:
        revoke_key(session, key_id)
    console.print(f"key {key_id} revoked")
