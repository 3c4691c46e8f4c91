"""What every command shares: settings, the database, output, and refusals."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError

from settlement.config import Settings
from settlement.db import SessionFactory, make_session_factory
from settlement.errors import SettlementError

console = Console()
errors = Console(stderr=True, soft_wrap=True)


@dataclass
class State:
    """Per-invocation state, built lazily so ``--help`` never touches the database."""

    database_url: str | None
    _settings: Settings | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings(database_url=self.database_url) if self.database_url else Settings()
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = self.settings.engine()
        return self._engine

    @property
    def factory(self) -> SessionFactory:
        return make_session_factory(self.engine)


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    assert isinstance(obj, State)
    return obj


@contextmanager
def fail_on_refusal() -> Iterator[None]:
    """Print a refusal as ``error [code]: message`` and exit 1, instead of a traceback;
    the same for a database that is unreachable or not migrated yet."""
    try:
        yield
    except OperationalError as error:
        text = str(error.orig)
        if "no such table" in text or ("does not exist" in text and "relation" in text):
            _refuse("database_not_initialised", "the schema is missing; run `settlement db upgrade` first")
        else:
            _refuse("database_unavailable", text.strip())
        sys.exit(1)
    except ProgrammingError as error:
        if "does not exist" in str(error.orig):
            _refuse("database_not_initialised", "the schema is missing; run `settlement db upgrade` first")
            sys.exit(1)
        raise
    except SettlementError as error:
        _refuse(error.code, error.message, replayed=error.replayed)
        for key, value in error.detail.items():
            errors.print(escape(f"  {key}: {value}"), highlight=False)
        sys.exit(1)


def _refuse(code: str, message: str, *, replayed: bool = False) -> None:
    suffix = " (replayed)" if replayed else ""
    errors.print(f"[bold red]error[/] {escape(f'[{code}]')}{suffix}: {escape(message)}", highlight=False)
