"""Direct statements: SQLAlchemy's SQL and value conversions, run through psycopg in
the session's own transaction (plain ``session.execute`` on SQLite)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert, text

from settlement.db import unit_of_work
from settlement.db.direct import Direct
from settlement.payments.models import Merchant
from tests.conftest import Database

_TABLE = Merchant.__table__
_ALL = ["name", "external_id", "settlement_currency", "commission_rate", "payout_rail", "payout_destination",
        "payout_beneficiary", "metadata", "created_at", "updated_at"]
_INSERT = Direct(insert(_TABLE).returning(_TABLE.c.id, _TABLE.c.metadata), _ALL)


def _values(name: str, **changes: Any) -> dict[str, Any]:
    stamp = dt.datetime(2026, 11, 22, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=3)))
    return {"name": name, "external_id": None, "settlement_currency": "RUB", "commission_rate": Decimal("0.0125"),
            "payout_rail": None, "payout_destination": None, "payout_beneficiary": None,
            "metadata": {"city": "Kazan", "tier": 2}, "created_at": stamp, "updated_at": stamp, **changes}


def test_values_are_converted_as_sqlalchemy_does(database: Database) -> None:
    with unit_of_work(database.factory) as session:
        row = _INSERT.first(session, _values("direct"))
    assert row is not None
    merchant_id, metadata = row
    assert metadata == {"city": "Kazan", "tier": 2}     # JSON both ways
    with database.factory() as session:
        merchant = session.get(Merchant, merchant_id)
        assert merchant is not None
        assert merchant.meta == {"city": "Kazan", "tier": 2}
        assert merchant.commission_rate == Decimal("0.0125")
        # Stored as UTC, the instant unchanged.
        assert merchant.created_at == dt.datetime(2026, 11, 22, 5, 30, tzinfo=dt.UTC)


def test_it_runs_in_the_sessions_transaction(database: Database) -> None:
    with database.factory() as session:
        _INSERT.rows(session, _values("rolled back"))
        assert session.execute(text("SELECT count(*) FROM merchants")).scalar_one() == 1
        session.rollback()
    with database.factory() as session:
        assert session.execute(text("SELECT count(*) FROM merchants")).scalar_one() == 0


def test_a_naive_datetime_is_refused_before_anything_is_written(pg_database: Database) -> None:
    with pg_database.factory() as session:
        with pytest.raises(ValueError, match="naive datetime refused"):
            _INSERT.rows(session, _values("naive", created_at=dt.datetime(2026, 11, 22, 8, 30)))
        session.rollback()
        assert session.execute(text("SELECT count(*) FROM merchants")).scalar_one() == 0


def test_every_column_with_a_default_must_be_given(pg_database: Database) -> None:
    partial = Direct(insert(_TABLE), [name for name in _ALL if name != "metadata"])
    with pg_database.factory() as session, pytest.raises(ValueError, match="metadata"):
        partial.rows(session, {k: v for k, v in _values("partial").items() if k != "metadata"})


def test_a_missing_parameter_is_refused(pg_database: Database) -> None:
    with pg_database.factory() as session, pytest.raises(Exception, match="name"):
        _INSERT.rows(session, {k: v for k, v in _values("missing").items() if k != "name"})
