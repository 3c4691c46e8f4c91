"""``settlement export`` and ``settlement verify`` as an auditor runs them."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from settlement.cli import build_app
from tests.conftest import Database
from tests.exports.conftest import fill
from tests.journal.factories import ORIGIN, Keys


@pytest.fixture
def shell(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SETTLEMENT_JOURNAL_ORIGIN", ORIGIN)
    monkeypatch.setenv("SETTLEMENT_JOURNAL_SIGNING_KEY_FILE", str(keys.private))


def run(database: Database, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(build_app(), ["--database-url", database.url, *args])
    assert result.exit_code == code, result.output
    return result.output


@pytest.mark.usefixtures("shell")
def test_export_then_verify_from_the_shell(database: Database, keys: Keys, tmp_path: Path) -> None:
    fill(database)
    out_dir = tmp_path / "audit"
    out = run(database, "export", "--from", "2000-01-01", "--format", "jsonl", "--out", str(out_dir))
    assert "exported sequence numbers 1 to" in out
    assert "journal.jsonl" in out
    assert "manifest sha256" in out
    assert "OK:" in run(database, "verify", str(out_dir), "--public-key", str(keys.public))
    lines = (out_dir / "trial_balance.jsonl").read_text().splitlines()
    (out_dir / "trial_balance.jsonl").write_text("\n".join(lines[1:]) + "\n")
    failed = run(database, "verify", str(out_dir), "--public-key", str(keys.public), code=1)
    assert "FAIL trial_balance.jsonl: SHA-256" in failed
    assert "has postings in the period but no row" in failed
    again = run(database, "export", "--out", str(out_dir), code=1)
    assert "[export_directory_not_empty]" in again


@pytest.mark.usefixtures("shell")
def test_command_line_refusals(database: Database, keys: Keys, tmp_path: Path) -> None:
    assert "[journal_empty]" in run(database, "export", "--out", str(tmp_path / "a"), code=1)
    fill(database)
    assert "[invalid_period]" in run(database, "export", "--from", "yesterday", "--out", str(tmp_path / "b"),
                                     code=1)
    assert "[invalid_period]" in run(database, "export", "--from", "2026-02-01", "--to", "2026-01-01", "--out",
                                     str(tmp_path / "c"), code=1)
    assert "[invalid_export_format]" in run(database, "export", "--format", "pdf", "--out", str(tmp_path / "d"),
                                            code=1)
    assert "[invalid_exchange_rate]" in run(database, "export", "--format", "xml", "--rate", "CNY=abc", "--out",
                                            str(tmp_path / "e"), code=1)
    assert "[unknown_currency]" in run(database, "export", "--format", "xml", "--rate", "XYZ=1", "--out",
                                       str(tmp_path / "f"), code=1)
    missing = run(database, "export", "--format", "xml", "--reporting-currency", "RUB", "--out",
                  str(tmp_path / "g"), code=1)
    assert "[missing_exchange_rate]" in missing
    assert "--rate CNY=" in missing
    assert not (tmp_path / "g").exists()  # nothing half-written is left behind
    assert "--public-key" in run(database, "verify", str(tmp_path), code=2)
    assert "[invalid_signing_key]" in run(database, "verify", str(tmp_path), "--public-key",
                                          str(tmp_path / "absent.pub"), code=1)
    not_an_export = run(database, "verify", str(tmp_path), "--public-key", str(keys.public), code=1)
    assert "manifest.json" in not_an_export
