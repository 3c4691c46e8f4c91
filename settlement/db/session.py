"""Sessions and the unit of work.

Domain services take a :class:`~sqlalchemy.orm.Session` and never commit. Whoever
starts the work (an HTTP request, a task, a CLI command) wraps it in
:func:`unit_of_work`, which commits on success and rolls back on any exception.
When a :class:`~settlement.errors.SettlementError` carries ``after_rollback`` work
(a business refusal the ledger must remember under its idempotency key), that work
is committed in a fresh transaction after the rollback, so the refusal is durable
and nothing of the refused operation is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from settlement.errors import SettlementError

SessionFactory = sessionmaker[Session]


def make_session_factory(engine: Engine) -> SessionFactory:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


@contextmanager
def unit_of_work(factory: SessionFactory) -> Iterator[Session]:
    """One transaction: commit on success, roll back on error (then persist any
    ``after_rollback`` work the error carries, and re-raise)."""
    session = factory()
    try:
        yield session
        session.commit()
    except SettlementError as exc:
        session.rollback()
        if exc.after_rollback is not None:
            exc.after_rollback(session)
            session.commit()
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
