"""Statements run straight through psycopg on a session's own connection.

SQLAlchemy's execution of a statement (cache lookup, parameter processing, cursor and
result set-up) costs several times what psycopg itself does for the short statements
every payment runs. A :class:`Direct` statement is compiled by SQLAlchemy once per
dialect, so it keeps the same SQL and the same conversion of every value (each bound
type's own bind processor), and is then run on the session's connection as a psycopg
prepared statement, inside the session's transaction. When it is the statement that
opens the transaction, psycopg's BEGIN goes out in the same round trip.

Rows come back as psycopg returns them, without SQLAlchemy's result processing: fit
for statements that answer ids, text, numbers and JSON. On other databases the
statement simply goes through ``session.execute``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler

from settlement.db.session import raw_rows


@dataclass(frozen=True)
class _Compiled:
    compiled: SQLCompiler
    sql: str
    processors: dict[str, Callable[[Any], Any]]


class Direct:
    """``statement``, run through psycopg (see the module docstring). ``keys``: for an
    INSERT or UPDATE whose values are given as parameters, the columns given at every
    call (they decide the compiled SQL); each call must give all of them."""

    def __init__(self, statement: Executable, keys: Sequence[str] = ()) -> None:
        self.statement = statement
        self.keys = list(keys)
        self._by_dialect: dict[Dialect, _Compiled] = {}

    def _compile(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect)
        if found is not None:
            return found
        compiled = self.statement.compile(dialect=dialect, column_keys=self.keys or None)  # type: ignore[attr-defined]
        assert isinstance(compiled, SQLCompiler)
        if compiled.insert_prefetch or compiled.update_prefetch:
            # Python-side column defaults are computed by SQLAlchemy's execution.
            missing = [c.name for c in (*compiled.insert_prefetch, *compiled.update_prefetch)]
            raise ValueError(f"give a value for every column with a default: {', '.join(missing)}")
        processors: dict[str, Callable[[Any], Any]] = {}
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processors[name] = processor
        found = _Compiled(compiled, compiled.string, processors)
        self._by_dialect[dialect] = found
        return found

    def rows(self, session: Session, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The statement's rows (none for a statement without RETURNING)."""
        bind = session.get_bind()
        if bind.dialect.name != "postgresql":
            result = session.execute(self.statement, dict(params))
            return [tuple(row) for row in result] if result.returns_rows else []  # type: ignore[attr-defined]
        compiled = self._compile(bind.dialect)
        values = compiled.compiled.construct_params(dict(params), _check=True)
        for name, processor in compiled.processors.items():
            values[name] = processor(values[name])
        return raw_rows(session, compiled.sql, values)

    def first(self, session: Session, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        found = self.rows(session, params)
        return found[0] if found else None
