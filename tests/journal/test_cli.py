"""``settlement journal``: keygen, seal, checkpoint, status and proofs from the shell."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from settlement.cli import build_app
from tests.conftest import Database
from tests.journal import rfc9162
from tests.journal.factories import ORIGIN, open_book, post_many


def run(database: Database, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(build_app(), ["--database-url", database.url, *args])
    assert result.exit_code == code, result.output
    return result.output


def test_keygen_seal_checkpoint_and_proofs(database: Database, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SETTLEMENT_JOURNAL_ORIGIN", ORIGIN)
    monkeypatch.delenv("SETTLEMENT_JOURNAL_SIGNING_KEY_FILE", raising=False)
    monkeypatch.delenv("SETTLEMENT_JOURNAL_SIGNING_KEY", raising=False)
    open_book(database.factory)
    post_many(database.factory, 6, "x")
    assert "sealed 6 entries; the journal holds 6" in run(database, "journal", "seal")
    refused = run(database, "journal", "checkpoint", code=1)
    assert "[signing_key_missing]" in refused
    assert "keygen" in refused
    key = tmp_path / "journal.pem"
    out = run(database, "journal", "keygen", "--out", str(key))
    assert str(key) in out
    assert Path(f"{key}.pub").exists()
    assert "[key_file_exists]" in run(database, "journal", "keygen", "--out", str(key), code=1)
    monkeypatch.setenv("SETTLEMENT_JOURNAL_SIGNING_KEY_FILE", str(key))
    assert "checkpoint 6 root" in run(database, "journal", "checkpoint")
    post_many(database.factory, 3, "y")
    assert "checkpoint 9 root" in run(database, "journal", "checkpoint")
    status = run(database, "journal", "status")
    assert "sealed entries: 9" in status
    assert "latest checkpoint: 9" in status
    proof = json.loads(run(database, "journal", "proof", "4", "--tree-size", "6"))
    root6 = base64.b64decode(proof["checkpoint"]["note"].split("\n")[2])
    leaf = rfc9162.leaf_hash(base64.b64decode(proof["canonical"]))
    assert rfc9162.verify_inclusion(proof["leaf_index"], 6, leaf, [bytes.fromhex(h) for h in proof["audit_path"]],
                                    root6)
    consistency = json.loads(run(database, "journal", "consistency", "6", "9"))
    root9 = bytes.fromhex(consistency["to_checkpoint"]["root_hash"])
    assert rfc9162.verify_consistency(6, 9, root6, root9, [bytes.fromhex(h) for h in consistency["proof"]])
    assert "-----BEGIN PUBLIC KEY-----" in run(database, "journal", "public-key")
    assert "[entry_not_found]" in run(database, "journal", "proof", "999", code=1)
    assert "[invalid_range]" in run(database, "journal", "consistency", "9", "6", code=1)
