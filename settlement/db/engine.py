"""Engine construction for the two supported databases.

SQLite (embedded default): WAL journal, foreign keys on, a busy timeout, and every
transaction begins ``IMMEDIATE`` so it takes the write lock up front; two writers
then queue instead of failing to upgrade a read lock. PostgreSQL: psycopg 3 with
a connection pool; transactions are READ COMMITTED and the ledger takes explicit
row locks.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import NullPool


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False, pre_ping: bool = False,
                **kwargs: Any) -> Engine:
    """An engine for ``url``. ``pre_ping`` tests every pooled connection before use:
    one extra round trip per transaction; without it a connection broken by a database
    restart fails one transaction and is then discarded by the pool."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url, echo=echo, **kwargs)
    kwargs.setdefault("pool_pre_ping", pre_ping)
    if kwargs.get("poolclass") is not NullPool:
        kwargs.setdefault("pool_size", pool_size)
        kwargs.setdefault("max_overflow", pool_size)
    return create_engine(url, echo=echo, **kwargs)


def _sqlite_engine(url: str, *, echo: bool, **kwargs: Any) -> Engine:
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("timeout", 30)
    connect_args.setdefault("check_same_thread", False)
    engine = create_engine(url, echo=echo, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if ":memory:" not in url and url not in ("sqlite://", "sqlite:///"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
