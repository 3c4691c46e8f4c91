"""Refusals of the export service itself: periods that are not sealed or still open,
bad requests, and nothing written when refused."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from settlement.exports.errors import (
    ExportDirectoryNotEmpty,
    InvalidExchangeRate,
    InvalidPeriod,
    PeriodNotSealed,
    PeriodOpen,
)
from settlement.exports.service import ExportRequest, parse_rate
from settlement.journal.errors import SigningKeyMissing
from settlement.ledger import Ledger
from tests.conftest import PG_HOST, PG_PORT, PG_USER, Database
from tests.exports.conftest import Exporter
from tests.journal.factories import post_many, transfer


def test_a_period_with_committed_but_unsealable_entries_is_refused(
        book: Database, exporter: Callable[[Database], Exporter], tmp_path: Path) -> None:
    older = book.factory()
    try:
        Ledger(older).post(transfer("older", "bank:CNY", "wallet:2:CNY", 1, "CNY"))  # running, holds the horizon
        post_many(book.factory, 2, "newer")  # committed, but cannot be sealed before the older one ends
        end = dt.datetime.now(dt.UTC)
        with pytest.raises(PeriodNotSealed) as refused:
            exporter(book)("csv", period_to=end, name="refused")
        assert refused.value.detail["entries"] == 2
        assert not (tmp_path / "refused").exists()
    finally:
        older.rollback()
        older.close()
    result = exporter(book)("csv", period_to=end, name="later")
    assert result.entries > 0


def test_a_period_a_running_transaction_could_still_write_into_is_refused(
        book: Database, exporter: Callable[[Database], Exporter]) -> None:
    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER,
                         dbname=book.url.rsplit("/", 1)[1]) as running:
        running.execute("SELECT pg_current_xact_id()")
        with pytest.raises(PeriodOpen):
            exporter(book)("csv", period_to=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5))
        # As of the latest checkpoint (no end given), nothing can still change it.
        assert exporter(book)("csv", name="as-of").entries > 0
    with pytest.raises(PeriodOpen, match="not ended yet"):
        exporter(book)("csv", period_to=dt.datetime.now(dt.UTC) + dt.timedelta(days=1), name="future")


def test_requests_are_checked_before_anything_runs(book: Database, exporter: Callable[[Database], Exporter],
                                                   tmp_path: Path) -> None:
    run = exporter(book)
    with pytest.raises(InvalidPeriod):
        run("csv", period_from=dt.datetime(2026, 1, 1))
    with pytest.raises(InvalidExchangeRate):
        run("xml", rates={"CNY": Decimal("-1")})
    with pytest.raises(InvalidExchangeRate):
        parse_rate("CNY")
    assert parse_rate("cny=12.5") == ("CNY", Decimal("12.5"))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    with pytest.raises(ExportDirectoryNotEmpty):
        run("csv", name="busy")
    assert ExportRequest("csv").rates == {}


def test_no_key_no_export(book: Database, tmp_path: Path) -> None:
    from settlement.exports.service import export
    from tests.journal.factories import settings_for

    with pytest.raises(SigningKeyMissing):
        export(book.factory, settings_for(book.url, None, tmp_path), ExportRequest("csv"), tmp_path / "out")
    assert not (tmp_path / "out").exists()



def test_as_of_the_latest_checkpoint_entries_committed_since_are_simply_later(
        book: Database, exporter: Callable[[Database], Exporter]) -> None:
    older = book.factory()
    try:
        Ledger(older).post(transfer("held", "bank:CNY", "wallet:2:CNY", 1, "CNY"))  # holds the sealer back
        post_many(book.factory, 2, "since")  # committed, but cannot be sealed while "held" runs
        result = exporter(book)("jsonl")
    finally:
        older.rollback()
        older.close()
    with book.factory() as session:
        committed = session.execute(text("SELECT count(*) FROM ledger_entries")).scalar_one()
    assert result.entries == result.tree_size == committed - 2
