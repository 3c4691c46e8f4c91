"""The ``settlement`` command.

Each domain adds its own command group module here and registers it in
:func:`build_app`. Commands own their transaction: they open a unit of work, call
domain services, and print; services never commit.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from settlement.cli import db as db_commands
from settlement.cli import demo as demo_commands
from settlement.cli import exports as export_commands
from settlement.cli import journal as journal_commands
from settlement.cli import keys as keys_commands
from settlement.cli import ledger as ledger_commands
from settlement.cli import payments as payments_commands
from settlement.cli import reconcile as reconcile_commands
from settlement.cli import serve as serve_commands
from settlement.cli import webhooks as webhooks_commands
from settlement.cli.common import State, fail_on_refusal


class _Root(TyperGroup):
    """The root command group: refusals become one-line errors, whoever invokes it."""

    def invoke(self, ctx: Any) -> Any:  # Typer's vendored click Context
        with fail_on_refusal():
            return super().invoke(ctx)


def build_app() -> typer.Typer:
    app = typer.Typer(name="settlement", help="Cross-border payment settlement service.", cls=_Root,
                      no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

    @app.callback()
    def _root(ctx: typer.Context,
              database_url: str | None = typer.Option(
                  None, "--database-url", envvar="SETTLEMENT_DATABASE_URL",
                  help="sqlite:///file.db (default: settlement.db here) or postgresql+psycopg://...")) -> None:
        ctx.obj = State(database_url)

    app.add_typer(db_commands.app, name="db")
    app.add_typer(ledger_commands.app, name="ledger")
    app.add_typer(reconcile_commands.app, name="reconcile")
    app.add_typer(keys_commands.app, name="keys")
    app.add_typer(serve_commands.app, name="serve")
    app.add_typer(payments_commands.app, name="payments")
    app.add_typer(webhooks_commands.app, name="webhooks")
    app.add_typer(journal_commands.app, name="journal")
    app.add_typer(demo_commands.app, name="demo")
    export_commands.register(app)
    return app


def main() -> None:
    build_app()()
