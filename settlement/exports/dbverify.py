"""The database verifier: does the live database still hold what the journal
sealed and the checkpoints signed?

For every leaf of the latest checkpoint it reads the entry back from the ledger,
encodes it again and compares the leaf hash: an entry changed after sealing (an
entry field, a posting altered, added or deleted) or removed is named. The leaves
recomputed from the ledger must rebuild every checkpoint's signed root and chain
head, every checkpoint must be signed by the key, and the stored chain must link.
Finally it names entries that sort before the last sealed one in sealing order but
are not in the journal: inserted after sealing.

A PostgreSQL user who can drop the append-only triggers can change rows; what he
cannot do is make them hash to what the signed checkpoints hold.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import text

from settlement.db import SessionFactory, unit_of_work
from settlement.journal import reader
from settlement.journal.canonical import leaf_hash
from settlement.journal.keys import PublicKey
from settlement.journal.merkle import Frontier
from settlement.journal.notes import BadNote, open_checkpoint
from settlement.journal.store import ZERO_HASH, CheckpointRow, JournalStore

MAX_FINDINGS = 1000


@dataclass(frozen=True)
class Finding:
    """``kind``: changed, removed, inserted, checkpoint, chain."""

    kind: str
    message: str
    entry_id: int | None = None
    seq: int | None = None

    def __str__(self) -> str:
        return self.message


@dataclass
class DatabaseReport:
    findings: list[Finding] = field(default_factory=list)
    more: int = 0
    tree_size: int = 0
    checked: int = 0
    unsealed: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings and self.tree_size > 0

    def add(self, finding: Finding) -> None:
        if len(self.findings) < MAX_FINDINGS:
            self.findings.append(finding)
        else:
            self.more += 1


def verify_database(factory: SessionFactory, key: PublicKey,
                    progress: Callable[[int, int], None] | None = None) -> DatabaseReport:
    report = DatabaseReport()
    with unit_of_work(factory) as session:
        store = JournalStore(session)
        if store.postgres:
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        reader.tune(session)
        latest = store.checkpoint()
        if latest is None:
            report.add(Finding("checkpoint", "the journal has no checkpoint to verify against"))
            return report
        size = report.tree_size = latest.tree_size
        checkpoints = store.all_checkpoints(size)
        _check_signatures(checkpoints, key, report)
        due = {c.tree_size: c for c in checkpoints}
        frontier = Frontier()
        chain = stored_chain = ZERO_HASH
        sql = (f"SELECT l.seq, l.leaf_hash, l.chain_hash, {reader.entry_columns(store.dialect)} "
               f"FROM journal_leaves l LEFT JOIN ledger_entries e ON e.id = l.entry_id {reader.POSTING_JOINS} "
               f"WHERE l.seq <= {reader.bind(store.dialect, 'n')} ORDER BY l.seq, p.id")
        expected = 1
        for record in reader.stream(session, sql, {"n": size}):
            assert record.seq is not None
            assert record.stored_leaf is not None
            if record.seq != expected:
                report.add(Finding("removed", f"journal leaves {expected} to {record.seq - 1} are missing",
                                   seq=expected))
                return report
            expected += 1
            stored = record.stored_leaf
            stored_chain_next = hashlib.sha256(stored_chain + stored).digest()
            if record.extra is None or bytes(record.extra) != stored_chain_next:
                report.add(Finding("chain", f"journal leaf {record.seq}: the stored hash chain does not link",
                                   seq=record.seq))
            stored_chain = stored_chain_next
            if record.missing:
                report.add(Finding("removed", f"entry of journal leaf {record.seq} was removed after sealing",
                                   seq=record.seq))
                leaf = stored
            else:
                leaf = leaf_hash(record.canonical())
                if leaf != stored:
                    report.add(Finding("changed", f"entry {record.entry_id} (journal leaf {record.seq}) was changed "
                                                  "after sealing: it no longer hashes to its sealed leaf",
                                       entry_id=record.entry_id, seq=record.seq))
            frontier.append(leaf)
            chain = hashlib.sha256(chain + leaf).digest()
            report.checked += 1
            checkpoint = due.get(record.seq)
            if checkpoint is not None:
                _check_root(checkpoint, frontier.root(), chain, report)
            if progress is not None and report.checked % 10_000 == 0:
                progress(report.checked, size)
        if expected != size + 1:
            report.add(Finding("removed", f"journal leaves {expected} to {size} are missing", seq=expected))
        _inserted(store, size, report)
    return report


def _check_signatures(checkpoints: list[CheckpointRow], key: PublicKey, report: DatabaseReport) -> None:
    for checkpoint in checkpoints:
        try:
            body = open_checkpoint(checkpoint.note, PublicKey(key.key, checkpoint.origin))
        except BadNote as exc:
            report.add(Finding("checkpoint", f"checkpoint {checkpoint.tree_size}: {exc}"))
            continue
        if (body.tree_size, body.root_hash, body.chain_head) != (checkpoint.tree_size, checkpoint.root_hash,
                                                                 checkpoint.chain_head):
            report.add(Finding("checkpoint", f"checkpoint {checkpoint.tree_size}: stored columns differ from "
                                             "its signed note"))


def _check_root(checkpoint: CheckpointRow, root: bytes, chain: bytes, report: DatabaseReport) -> None:
    if root != checkpoint.root_hash:
        report.add(Finding("checkpoint", f"the ledger's entries 1 to {checkpoint.tree_size} no longer rebuild the "
                                         f"signed root of checkpoint {checkpoint.tree_size}"))
    if chain != checkpoint.chain_head:
        report.add(Finding("checkpoint", f"the ledger's entries no longer rebuild the hash chain head of "
                                         f"checkpoint {checkpoint.tree_size}"))


def _inserted(store: JournalStore, size: int, report: DatabaseReport) -> None:
    """Entries missing from the journal although they sort before its last sealed
    entry (so the sealer would have taken them): written after sealing."""
    row = store.session.execute(text(
        "SELECT e.id, e.tx_id FROM journal_leaves l JOIN ledger_entries e ON e.id = l.entry_id "
        "WHERE l.seq = :n"), {"n": size}).first()
    if row is None:
        return
    last_id, last_tx = int(row[0]), row[1]
    if store.postgres and last_tx is not None:
        condition = "(e.tx_id IS NULL OR e.tx_id < :tx OR (e.tx_id = :tx AND e.id < :id))"
        params = {"tx": int(last_tx), "id": last_id}
    else:
        condition = "e.id < :id"
        params = {"id": last_id}
    rows = store.session.execute(text(
        "SELECT e.id FROM ledger_entries e LEFT JOIN journal_leaves l ON l.entry_id = e.id "
        f"WHERE l.seq IS NULL AND {condition} ORDER BY e.id"), params)
    for found in rows:
        entry_id = int(found[0])
        report.add(Finding("inserted", f"entry {entry_id} is not in the journal although it precedes the last "
                                       "sealed entry: it was inserted after sealing", entry_id=entry_id))
    report.unsealed = int(store.session.execute(text(
        "SELECT COUNT(*) FROM ledger_entries e LEFT JOIN journal_leaves l ON l.entry_id = e.id "
        "WHERE l.seq IS NULL")).scalar_one())
