"""write_changes: the changes of a few ORM objects in one statement on PostgreSQL,
exactly what a flush would write; the flush's own way elsewhere."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Integer, String, event, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.orm.exc import StaleDataError

from settlement.db import unit_of_work
from settlement.db.changes import write_changes
from settlement.payments.models import Merchant
from settlement.payments.service.merchants import MerchantSpec, create_merchant
from tests.conftest import Database


def _two_merchants(db: Database) -> tuple[int, int]:
    with unit_of_work(db.factory) as session:
        first = create_merchant(session, MerchantSpec("first", "RUB", Decimal("0.01")))
        second = create_merchant(session, MerchantSpec("second", "CNY", Decimal("0.02")))
        return first.id, second.id


def _stored(db: Database, merchant_id: int) -> tuple[str, Decimal, str | None]:
    with db.factory() as session:
        row = session.execute(text("SELECT name, commission_rate, payout_rail FROM merchants WHERE id = :i"),
                              {"i": merchant_id}).one()
        return row[0], Decimal(str(row[1])), row[2]  # str: SQLite answers a float


def test_changes_of_several_rows_go_in_one_statement(database: Database) -> None:
    first_id, second_id = _two_merchants(database)
    statements: list[str] = []
    with unit_of_work(database.factory) as session:
        first, second = session.get(Merchant, first_id), session.get(Merchant, second_id)
        assert first is not None
        assert second is not None
        first.name, first.commission_rate = "first, renamed", Decimal("0.015")
        second.payout_rail = "unionpay"
        second.name = second.name  # set to what it was: not a change
        event.listen(session.get_bind(), "before_cursor_execute", lambda *a: statements.append(a[2]))
        written = write_changes(session, [first, second])
        if database.dialect == "postgresql":
            assert written
            assert not session.dirty
            session.flush()
            assert statements == []      # the flush had nothing left to write
            # Prepared on the session's connection: both rows' updates in one statement.
            (sent,) = session.execute(text("SELECT statement FROM pg_prepared_statements "
                                           "WHERE statement LIKE 'WITH u0 AS (UPDATE merchants%'")).scalars()
            assert "u1 AS (UPDATE merchants" in sent
            assert "name" not in sent.split("u1 AS", 1)[1].split("WHERE")[0]
        else:
            assert not written
            assert statements == []
    assert _stored(database, first_id) == ("first, renamed", Decimal("0.015"), None)
    assert _stored(database, second_id) == ("second", Decimal("0.02"), "unionpay")


def test_a_row_gone_meanwhile_fails_the_write(pg_database: Database) -> None:
    first_id, second_id = _two_merchants(pg_database)
    with unit_of_work(pg_database.factory) as session:
        first, second = session.get(Merchant, first_id), session.get(Merchant, second_id)
        assert first is not None
        assert second is not None
        session.execute(text("DELETE FROM merchants WHERE id = :i"), {"i": second_id})
        first.name, second.name = "changed", "changed too"
        with pytest.raises(StaleDataError, match="updated \\[1, 0\\]"):
            write_changes(session, [first, second])
        session.rollback()
    assert _stored(pg_database, first_id)[0] == "first"   # rolled back with the rest


def test_objects_of_another_session_are_left_to_the_flush(pg_database: Database) -> None:
    first_id, _ = _two_merchants(pg_database)
    with pg_database.factory() as other:
        stranger = other.get(Merchant, first_id)
        assert stranger is not None
        stranger.name = "elsewhere"
        with unit_of_work(pg_database.factory) as session:
            assert not write_changes(session, [stranger])
    assert _stored(pg_database, first_id)[0] == "first"


class _Scratch(DeclarativeBase):
    pass


class _Stamped(_Scratch):
    """A table whose updates compute a value (a temporary table of the test's own)."""

    __tablename__ = "stamped"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String)
    touched: Mapped[int] = mapped_column(Integer, onupdate=lambda: 7)


def test_a_table_whose_updates_compute_values_is_left_to_the_flush(pg_database: Database) -> None:
    with pg_database.factory() as session:
        session.execute(text("CREATE TEMP TABLE stamped (id integer PRIMARY KEY, name text, touched integer)"))
        row = _Stamped(id=1, name="a", touched=0)
        session.add(row)
        session.flush()
        row.name = "b"
        assert not write_changes(session, [row])
        session.flush()
        assert session.execute(text("SELECT name, touched FROM stamped")).one() == ("b", 7)
        session.rollback()
