"""The few things reconciliation's SQL says differently on each database, in one
place, so that every rule is one statement run on both.

PostgreSQL is the reference and the fast path: temporary tables dropped at commit,
hash joins over whole sets, match ids drawn from the identity's sequence. SQLite
(the embedded default, sized for thousands of lines, not millions) runs the same
statements with these differences:

* dates are ISO text, so day arithmetic goes through ``julianday`` (:meth:`Sql.day`);
* there are no sequences: match ids come from ``recon_match_id()``, a function
  registered on the connection that counts on from the table's highest id (SQLite
  transactions take the write lock at ``BEGIN IMMEDIATE``, so nobody else inserts
  matches meanwhile);
* numbers with decimals are binary floats, so the FX conversion of a net amount at a
  quoted rate is ``recon_fx()``, a registered function computing in ``Decimal``
  (half away from zero, as PostgreSQL's ``round(numeric)``), and tolerances compare
  integers (:func:`ratio`), never floats;
* temporary tables live as long as the connection: they are dropped before they are
  made again and when the step ends (:meth:`Sql.drop_temporary`);
* bound dates and times are written as the ORM stores them (ISO text, naive UTC).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Result
from sqlalchemy.orm import Session

_KEY = "settlement.reconciliation.sql"
#: SQLite's DATETIME text (what SQLAlchemy writes for UTCDateTime columns there).
_STAMP = "%Y-%m-%d %H:%M:%S.%f"
_RATE_PLACES = Decimal(10) ** -12


def ratio(relative: Decimal) -> tuple[int, int]:
    """``relative`` as (numerator, denominator), so ``|d| > |e| * relative`` can be
    asked exactly as ``|d| * denominator > |e| * numerator`` on either database."""
    numerator, denominator = relative.as_integer_ratio()
    return numerator, denominator


def convert(net: int | None, rate: float | int | str | Decimal | None) -> int | None:  # float-ok: SQLite's REAL rate
    """What ``net`` is worth at ``rate``, rounded half away from zero (SQLite's
    ``recon_fx``). A rate stored as a float is read back as the decimal it was
    written as (at most 12 places, the column's scale)."""
    if net is None or rate is None:
        return None
    exact = Decimal(repr(rate)) if isinstance(rate, float) else Decimal(rate)
    return int((Decimal(net) * exact.quantize(_RATE_PLACES)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


class Sql:
    """The dialect fragments and an ``execute`` for one session (see :func:`sql`)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.postgres = session.get_bind().dialect.name == "postgresql"
        self.temporary: list[str] = []

    # -- fragments ------------------------------------------------------------------

    @property
    def match_id(self) -> str:
        """The id the next match will get, drawn as pairs are found."""
        return "nextval('recon_matches_id_seq'::regclass)" if self.postgres else "recon_match_id()"

    def day(self, expression: str) -> str:
        """A date usable in day arithmetic (``day(a) - day(b)``: days between)."""
        return expression if self.postgres else f"julianday({expression})"

    def any_true(self, expression: str) -> str:
        return f"bool_or({expression})" if self.postgres else f"max({expression})"

    def fx(self, net: str, rate: str) -> str:
        """``net`` converted at ``rate``, rounded half away from zero, as a bigint."""
        return f"round({net} * {rate})::bigint" if self.postgres else f"recon_fx({net}, {rate})"

    def temp_as(self, name: str) -> str:
        """``CREATE TEMP TABLE name ... AS`` (followed by the SELECT)."""
        self._forget(name)
        return f"CREATE TEMP TABLE {name} ON COMMIT DROP AS" if self.postgres else f"CREATE TEMP TABLE {name} AS"

    def temp_table(self, name: str, columns: str) -> None:
        self._forget(name)
        suffix = " ON COMMIT DROP" if self.postgres else ""
        self.session.execute(text(f"CREATE TEMP TABLE {name} ({columns}){suffix}"))

    def delete_taken(self, table: str, source: str, column: str) -> int:
        """Delete from ``table`` the rows whose id is in ``source.column``."""
        if self.postgres:
            return self.x(f"DELETE FROM {table} USING {source} WHERE {table}.id = {source}.{column}")
        return self.x(f"DELETE FROM {table} WHERE id IN (SELECT {column} FROM {source})")

    # -- execution ------------------------------------------------------------------

    def x(self, statement: str, **params: Any) -> int:
        """Execute; returns the rows it changed."""
        return int(self.run(statement, **params).rowcount)  # type: ignore[attr-defined]

    def run(self, statement: str, **params: Any) -> Result[Any]:
        if not self.postgres:
            params = {name: _sqlite_value(value) for name, value in params.items()}
        return self.session.execute(text(statement), params)

    def scalar(self, statement: str, **params: Any) -> Any:
        return self.run(statement, **params).scalar()

    def rows(self, statement: str, **params: Any) -> Sequence[Any]:
        return self.run(statement, **params).all()

    # -- SQLite's session state -----------------------------------------------------

    def register_functions(self) -> None:
        """SQLite: ``recon_fx`` and ``recon_match_id`` on this session's connection, the
        ids counting on from the highest match id (the transaction holds the write
        lock, so they stay free)."""
        if self.postgres:
            return
        start = int(self.session.execute(text("SELECT COALESCE(max(id), 0) FROM recon_matches")).scalar_one())
        ids = itertools.count(start + 1)
        connection = self.session.connection().connection.driver_connection
        connection.create_function("recon_match_id", 0, lambda: next(ids))  # type: ignore[union-attr]
        connection.create_function("recon_fx", 2, convert, deterministic=True)  # type: ignore[union-attr]

    def drop_temporary(self) -> None:
        """SQLite: drop the temporary tables made so far (PostgreSQL drops them at commit)."""
        names, self.temporary = self.temporary, []
        if not self.postgres:
            for name in names:
                self.session.execute(text(f"DROP TABLE IF EXISTS temp.{name}"))

    def _forget(self, name: str) -> None:
        if self.postgres:
            return
        # A connection keeps its temporary tables: one left by a step that failed goes first.
        self.session.execute(text(f"DROP TABLE IF EXISTS temp.{name}"))
        self.temporary.append(name)


def sql(session: Session) -> Sql:
    """The :class:`Sql` of ``session`` (one per session: it remembers its temporary tables)."""
    found = session.info.get(_KEY)
    if found is None or found.session is not session:
        found = session.info[_KEY] = Sql(session)
    assert isinstance(found, Sql)
    return found


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: pass an aware datetime (UTC)")
        return value.astimezone(dt.UTC).strftime(_STAMP)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value
