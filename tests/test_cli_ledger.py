"""The ``settlement`` command: the ledger walkthrough of the README, and its refusals."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from settlement.cli import build_app
from settlement.db import unit_of_work
from settlement.ledger import Ledger
from tests.conftest import Database
from tests.ledger.invariants import counts, ledger_violations


def _run(database: Database, *args: str, ok: bool = True) -> str:
    result = CliRunner().invoke(build_app(), ["--database-url", database.url, *args])
    if ok:
        assert result.exit_code == 0, result.output
    return result.output


def test_walkthrough_accounts_transfer_hold_capture_balances(database: Database) -> None:
    _run(database, "ledger", "account", "create", "bank:RUB", "-c", "RUB", "-t", "asset")
    _run(database, "ledger", "account", "create", "buyer:1:RUB", "-c", "RUB", "-t", "liability", "--no-overdraft")
    _run(database, "ledger", "account", "create", "merchant:7:RUB", "-c", "RUB", "-t", "liability")
    out = _run(database, "ledger", "transfer", "--from", "bank:RUB", "--to", "buyer:1:RUB", "-a", "1500.00",
               "-c", "RUB", "-k", "topup-1")
    assert "1500.00 RUB" in out
    again = _run(database, "ledger", "transfer", "--from", "bank:RUB", "--to", "buyer:1:RUB", "-a", "1500.00",
                 "-c", "RUB", "-k", "topup-1")
    assert "replayed" in again
    out = _run(database, "ledger", "hold", "create", "--from", "buyer:1:RUB", "--to", "merchant:7:RUB",
               "-a", "999.99", "-c", "RUB", "-k", "auth-1", "--expires-in", "600")
    assert "hold 1 pending" in out
    out = _run(database, "ledger", "hold", "post", "1", "-a", "500.00", "--keep-remainder", "-k", "cap-1")
    assert "rest stays on hold 2: 499.99 RUB" in out
    _run(database, "ledger", "hold", "void", "2", "-k", "void-1")
    out = _run(database, "ledger", "balance", "buyer:1:RUB")
    assert "1000.00" in out
    with database.factory() as session:
        ledger = Ledger(session)
        assert ledger.balance("buyer:1:RUB").balance == 100_000
        assert ledger.balance("merchant:7:RUB").balance == 50_000
        assert ledger_violations(session) == []
    assert "0.00" in _run(database, "ledger", "balance", "buyer:1:RUB", "--as-of", "2000-01-01T00:00:00")
    assert "hold_post" in _run(database, "ledger", "entries", "buyer:1:RUB")


@pytest.mark.parametrize(("amount", "currency", "code"), [
    ("10.005", "RUB", "too_many_decimals"),
    ("0", "RUB", "non_positive_amount"),
    ("-5.00", "RUB", "non_positive_amount"),
    ("92233720368547758.08", "RUB", "amount_out_of_range"),
    ("ten", "RUB", "malformed_amount"),
    ("1.00", "XYZ", "unknown_currency"),
    ("1.00", "CNY", "currency_mismatch"),
])
def test_bad_amounts_on_the_command_line_write_nothing(sqlite_database: Database, amount: str, currency: str,
                                                       code: str) -> None:
    _run(sqlite_database, "ledger", "account", "create", "a", "-c", "RUB")
    _run(sqlite_database, "ledger", "account", "create", "b", "-c", "RUB")
    with sqlite_database.factory() as session:
        before = counts(session)
    result = CliRunner().invoke(build_app(), ["--database-url", sqlite_database.url, "ledger", "transfer",
                                              "--from", "a", "--to", "b", "-a", amount, "-c", currency])
    assert result.exit_code == 1
    assert f"[{code}]" in result.output
    with sqlite_database.factory() as session:
        after = counts(session)
    assert after[:3] == before[:3]


def test_unknown_account_is_named(sqlite_database: Database) -> None:
    _run(sqlite_database, "ledger", "account", "create", "a", "-c", "RUB")
    out = _run(sqlite_database, "ledger", "transfer", "--from", "a", "--to", "ghost", "-a", "1.00", "-c", "RUB",
               ok=False)
    assert "[account_not_found]" in out
    assert "ghost" in out
    with unit_of_work(sqlite_database.factory) as session:
        assert counts(session)[0] == 0


def test_missing_schema_is_a_clear_error(tmp_path: object) -> None:
    result = CliRunner().invoke(build_app(), ["--database-url", f"sqlite:///{tmp_path}/empty.db", "ledger",
                                              "balance", "x"])
    assert result.exit_code == 1
    assert "settlement db upgrade" in result.output
