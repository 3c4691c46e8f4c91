"""Sessions and the unit of work.

Domain services take a :class:`~sqlalchemy.orm.Session` and never commit. Whoever
starts the work (an HTTP request, a task, a CLI command) wraps it in
:func:`unit_of_work`, which commits on success and rolls back on any exception,
except a :class:`~settlement.errors.SettlementError` marked ``durable``: a business
refusal the ledger recorded under its idempotency key. That one is committed (with
whatever else the unit of work wrote before it) and re-raised. A caller that needs
all-or-nothing across several operations catches it and raises its own error.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from psycopg.pq import TransactionStatus
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from settlement.errors import SettlementError

SessionFactory = sessionmaker[Session]


def make_session_factory(engine: Engine) -> SessionFactory:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


@contextmanager
def unit_of_work(factory: SessionFactory) -> Iterator[Session]:
    """One transaction: commit on success, roll back on error, commit a durable
    refusal, and re-raise."""
    session = factory()
    try:
        yield session
        session.commit()
    except SettlementError as exc:
        if exc.durable:
            session.commit()
        else:
            session.rollback()
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def raw_rows(session: Session, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """PostgreSQL only: run ``sql`` (psycopg's ``%(name)s`` placeholders, prepared) on
    the session's own connection, inside its transaction, and return its rows (none
    for a statement that returns none).

    When it opens the transaction, psycopg's BEGIN goes out in the same round trip
    (pipeline mode) instead of one of its own before it."""
    raw = session.connection().connection.driver_connection
    assert raw is not None, "the session's connection is not open"
    with raw.cursor() as cursor:
        if raw.info.transaction_status == TransactionStatus.IDLE:
            with raw.pipeline():
                cursor.execute(sql, params, prepare=True)
        else:
            cursor.execute(sql, params, prepare=True)
        # Rows are tuples already (the connection's default row factory).
        found: list[tuple[Any, ...]] = cursor.fetchall() if cursor.description is not None else []
    return found


def first_row(session: Session, sql: str, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The first row of :func:`raw_rows`, None if there is none."""
    found = raw_rows(session, sql, params)
    return found[0] if found else None
