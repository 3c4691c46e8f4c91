"""``settlement db``: schema migrations."""

from __future__ import annotations

import typer

from settlement.cli.common import console, state
from settlement.db.migrate import upgrade

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command(ctx: typer.Context) -> None:
    """Run the migrations: bring the database to the newest schema."""
    url = state(ctx).settings.database_url
    upgrade(url)
    console.print(f"database at {_redact(url)} is up to date")


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}@{host}"
    return url
