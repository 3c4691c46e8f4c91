"""A sealed, checkpointed ledger with every kind of entry, a key made for the test,
and a helper that exports it."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from settlement.exports.service import ExportRequest, ExportResult, export
from tests.conftest import Database
from tests.journal.factories import Keys, make_keys, open_book, post_many, post_variety, settings_for

Exporter = Callable[..., ExportResult]

#: SAF-T needs one reporting currency: CNY lines are converted at this rate.
RATES = {"CNY": Decimal("12.3457")}


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return make_keys(tmp_path)


def fill(database: Database) -> None:
    open_book(database.factory)
    post_variety(database.factory)
    post_many(database.factory, 30, "many", batch=10)


@pytest.fixture
def book(pg_database: Database) -> Database:
    fill(pg_database)
    return pg_database


@pytest.fixture
def exporter(keys: Keys, tmp_path: Path) -> Callable[[Database], Exporter]:
    """``exporter(database)(fmt, period_from=..., period_to=..., name=...)``."""

    def bind(database: Database) -> Exporter:
        def run(fmt: str = "csv", *, name: str | None = None, **options: object) -> ExportResult:
            if fmt == "xml":
                options.setdefault("rates", RATES)
                options.setdefault("reporting_currency", "RUB")
            settings = settings_for(database.url, keys, tmp_path / "data")
            out = tmp_path / (name or f"export-{fmt}")
            return export(database.factory, settings, ExportRequest(fmt, **options), out)  # type: ignore[arg-type]

        return run

    return bind
