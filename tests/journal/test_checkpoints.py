"""Signed checkpoints and keys: signed notes any Ed25519 implementation can check, no
key no checkpoint, and no signature over a tree that does not extend the last one."""

from __future__ import annotations

import base64
import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sqlalchemy import text

from settlement.config import Settings
from settlement.db import unit_of_work
from settlement.journal import Journal
from settlement.journal.errors import InvalidSigningKey, JournalInconsistent, KeyFileExists, SigningKeyMissing
from settlement.journal.jobs import checkpoint_now
from settlement.journal.keys import keygen, load_signing_key
from settlement.journal.notes import BadNote, open_checkpoint
from tests.conftest import Database
from tests.journal import rfc9162
from tests.journal.factories import ORIGIN, checkpoint, make_keys, open_book, post_many, seal_all
from tests.journal.test_sealing import journal_rows


def test_a_checkpoint_is_a_signed_note_checked_without_our_code(database: Database, tmp_path: Path) -> None:
    keys = make_keys(tmp_path)
    open_book(database.factory)
    post_many(database.factory, 21, "x")
    latest = checkpoint(database.factory, keys)
    body, _, signature_line = latest.note.partition("\n\n")
    body += "\n"
    origin, size, root, chain, time = body.splitlines()
    leaves = [r[2] for r in journal_rows(database)]
    assert (origin, int(size), base64.b64decode(root)) == (ORIGIN, 21, rfc9162.mth(leaves))
    assert chain.startswith("chain ")
    assert time.startswith("time ")
    dash, name, blob = signature_line.strip().split(" ")
    assert (dash, name) == ("\u2014", ORIGIN)
    raw = base64.b64decode(blob)
    public = load_pem_public_key(keys.public.read_bytes())
    raw_key = public.public_bytes_raw()  # type: ignore[union-attr]
    assert raw[:4] == hashlib.sha256(ORIGIN.encode() + b"\n\x01" + raw_key).digest()[:4]
    public.verify(raw[4:], body.encode())  # type: ignore[union-attr, call-arg]
    assert open_checkpoint(latest.note, keys.verifier).tree_size == 21


def test_a_note_by_another_key_or_altered_does_not_open(database: Database, tmp_path: Path) -> None:
    keys, other = make_keys(tmp_path), make_keys(tmp_path, "other.pem")
    open_book(database.factory)
    post_many(database.factory, 2, "x")
    note = checkpoint(database.factory, keys).note
    with pytest.raises(BadNote, match="not signed by key"):
        open_checkpoint(note, other.verifier)
    with pytest.raises(BadNote, match="does not verify"):
        open_checkpoint(note.replace("\n2\n", "\n3\n", 1), keys.verifier)


def test_no_checkpoint_without_a_configured_key(database: Database, tmp_path: Path) -> None:
    open_book(database.factory)
    post_many(database.factory, 2, "x")
    with pytest.raises(SigningKeyMissing) as refused:
        load_signing_key(Settings(database_url=database.url, journal_signing_key_file=None, journal_signing_key=None))
    assert "keygen" in refused.value.message
    with pytest.raises(SigningKeyMissing):
        load_signing_key(Settings(journal_signing_key_file=tmp_path / "absent.pem"))
    (tmp_path / "garbage.pem").write_text("not a key")
    with pytest.raises(InvalidSigningKey):
        load_signing_key(Settings(journal_signing_key_file=tmp_path / "garbage.pem"))
    with database.factory() as session:
        assert session.execute(text("SELECT count(*) FROM journal_checkpoints")).scalar_one() == 0


def test_keygen_writes_a_private_file_and_never_overwrites(tmp_path: Path) -> None:
    private, public = keygen(tmp_path / "keys" / "journal.pem")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    before = private.read_bytes()
    with pytest.raises(KeyFileExists):
        keygen(private)
    assert private.read_bytes() == before
    keygen(private, force=True)
    assert private.read_bytes() != before


def test_checkpoints_only_when_the_tree_grew(database: Database, tmp_path: Path) -> None:
    keys = make_keys(tmp_path)
    open_book(database.factory)
    assert checkpoint_now(database.factory, keys.settings_key, batch=10) is None  # nothing sealed
    post_many(database.factory, 3, "x")
    first = checkpoint(database.factory, keys)
    assert checkpoint(database.factory, keys) == first
    post_many(database.factory, 2, "y")
    assert checkpoint(database.factory, keys).tree_size == 5
    with database.factory() as session:
        assert [c.tree_size for c in Journal(session).list_checkpoints()] == [5, 3]


def test_altered_subtree_hashes_are_never_signed(pg_database: Database, tmp_path: Path) -> None:
    keys = make_keys(tmp_path)
    open_book(pg_database.factory)
    post_many(pg_database.factory, 20, "x")
    checkpoint(pg_database.factory, keys)
    with unit_of_work(pg_database.factory) as session:
        session.execute(text("ALTER TABLE journal_nodes DISABLE TRIGGER journal_nodes_append_only"))
        session.execute(text("UPDATE journal_nodes SET hash = sha256(hash) WHERE level = 4 AND idx = 0"))
        session.execute(text("ALTER TABLE journal_nodes ENABLE TRIGGER journal_nodes_append_only"))
    post_many(pg_database.factory, 20, "y")
    seal_all(pg_database.factory)
    with pytest.raises(JournalInconsistent), unit_of_work(pg_database.factory) as session:
        Journal(session).checkpoint(keys.settings_key)
    with pg_database.factory() as session:
        assert session.execute(text("SELECT max(tree_size) FROM journal_checkpoints")).scalar_one() == 20
