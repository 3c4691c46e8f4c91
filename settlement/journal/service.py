"""The journal service: sealing, signed checkpoints and proofs over one Session.

``Journal(session)`` never commits; the task, request or command that owns the
transaction does. Proofs are RFC 9162 audit paths and consistency proofs against
signed checkpoints, so anyone with the public key can check them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from settlement.db.types import utcnow
from settlement.journal import merkle, reader
from settlement.journal.errors import CheckpointNotFound, EntryNotSealed, InvalidRange, JournalInconsistent
from settlement.journal.keys import SigningKey
from settlement.journal.notes import CheckpointBody, sign_checkpoint
from settlement.journal.sealing import DEFAULT_LIMIT, ReadAhead, SealResult, seal
from settlement.journal.store import CheckpointRow, JournalStore
from settlement.ledger.errors import EntryNotFound

MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class InclusionProof:
    entry_id: int
    seq: int
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    canonical: bytes
    path: list[bytes]
    checkpoint: CheckpointRow


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    old: CheckpointRow
    new: CheckpointRow
    path: list[bytes]


@dataclass(frozen=True, slots=True)
class JournalStatus:
    tree_size: int
    latest_checkpoint: CheckpointRow | None


class Journal:
    def __init__(self, session: Session, *, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.session = session
        self.clock = clock
        self.store = JournalStore(session)

    # -- sealing and checkpoints ------------------------------------------------------

    def seal(self, *, limit: int = DEFAULT_LIMIT, read_ahead: ReadAhead | None = None) -> SealResult:
        """Seal up to ``limit`` committed entries (see :mod:`settlement.journal.sealing`)."""
        return seal(self.store, limit=limit, clock=self.clock, read_ahead=read_ahead)

    def checkpoint(self, key: SigningKey) -> CheckpointRow | None:
        """Sign the tree as it stands, unless the latest checkpoint already covers it
        (returns None then, or when nothing is sealed yet). Before signing, the new
        root is proven consistent with the previous signed one, so altered journal
        tables are never signed over."""
        size = self.store.tree_size()
        previous = self.store.checkpoint()
        if size == 0 or (previous is not None and previous.tree_size >= size):
            return None
        wanted = [(0, size)]
        consistency: list[tuple[int, int]] = []
        if previous is not None:
            consistency = merkle.needed_subtrees(
                lambda sub: merkle.consistency_path(previous.tree_size, size, sub))
        subtree = self.subtrees(wanted + consistency)
        root = subtree(0, size)
        if previous is not None:
            path = merkle.consistency_path(previous.tree_size, size, subtree)
            if not merkle.verify_consistency(previous.tree_size, size, previous.root_hash, root, path):
                raise JournalInconsistent(f"the journal of {size} leaves does not extend checkpoint "
                                          f"{previous.tree_size}", tree_size=size, previous=previous.tree_size)
        body = CheckpointBody(key.name, size, root, self.store.chain_at(size), self.clock())
        note, signature = sign_checkpoint(body, key)
        row = CheckpointRow(size, root, body.chain_head, body.created_at, key.name, key.public.key_id,
                            signature, note)
        return row if self.store.insert_checkpoint(row) else self.store.checkpoint(size)

    def latest_checkpoint(self) -> CheckpointRow:
        found = self.store.checkpoint()
        if found is None:
            raise CheckpointNotFound("the journal has no checkpoint yet")
        return found

    def get_checkpoint(self, tree_size: int) -> CheckpointRow:
        found = self.store.checkpoint(tree_size)
        if found is None:
            raise CheckpointNotFound(f"no checkpoint has tree size {tree_size}", tree_size=tree_size)
        return found

    def list_checkpoints(self, *, before: int | None = None, limit: int = 100) -> list[CheckpointRow]:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRange(f"limit must be between 1 and {MAX_PAGE}", field="limit")
        return self.store.checkpoints(before=before, limit=limit)

    def status(self) -> JournalStatus:
        return JournalStatus(self.store.tree_size(), self.store.checkpoint())

    # -- proofs -----------------------------------------------------------------------

    def inclusion_proof(self, entry_id: int, tree_size: int | None = None) -> InclusionProof:
        """The audit path of entry ``entry_id`` in the checkpoint of ``tree_size``
        (default: the latest), with the entry's canonical bytes."""
        checkpoint = self.get_checkpoint(tree_size) if tree_size is not None else self.latest_checkpoint()
        found = self.store.leaf_of_entry(entry_id)
        if found is None:
            if not self.store.entry_exists(entry_id):
                raise EntryNotFound(f"entry {entry_id} does not exist", entry_id=entry_id)
            raise EntryNotSealed(f"entry {entry_id} is not sealed yet", entry_id=entry_id)
        seq, leaf = found
        if seq > checkpoint.tree_size:
            raise EntryNotSealed(f"entry {entry_id} was sealed as leaf {seq}, after checkpoint "
                                 f"{checkpoint.tree_size}", entry_id=entry_id, seq=seq,
                                 tree_size=checkpoint.tree_size)
        index, size = seq - 1, checkpoint.tree_size
        subtree = self.subtrees(merkle.needed_subtrees(lambda sub: merkle.inclusion_path(index, size, sub)))
        return InclusionProof(entry_id, seq, index, size, leaf, self.canonical(seq),
                              merkle.inclusion_path(index, size, subtree), checkpoint)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """RFC 9162 consistency proof between two checkpoints (default: to the latest)."""
        if old_size < 1:
            raise InvalidRange("from must be a tree size of at least 1", field="from")
        new = self.get_checkpoint(new_size) if new_size is not None else self.latest_checkpoint()
        if old_size > new.tree_size:
            raise InvalidRange(f"from ({old_size}) is larger than to ({new.tree_size})", field="from")
        old = self.get_checkpoint(old_size)
        size = new.tree_size
        subtree = self.subtrees(merkle.needed_subtrees(lambda sub: merkle.consistency_path(old_size, size, sub)))
        return ConsistencyProof(old, new, merkle.consistency_path(old_size, size, subtree))

    def canonical(self, seq: int) -> bytes:
        """The canonical bytes of the entry sealed as leaf ``seq``, read from the ledger now."""
        sql = (f"SELECT l.seq, l.leaf_hash, NULL, {reader.entry_columns(self.store.dialect)} FROM journal_leaves l "
               f"LEFT JOIN ledger_entries e ON e.id = l.entry_id {reader.POSTING_JOINS} "
               f"WHERE l.seq = {reader.bind(self.store.dialect, 's')} ORDER BY p.id")
        entries = list(reader.group(reader.rows(self.session, sql, {"s": seq}, server_side=False),
                                    self.store.dialect))
        if not entries or entries[0].missing:
            raise EntryNotSealed(f"leaf {seq} names an entry the ledger does not have", seq=seq)
        return entries[0].canonical()

    def subtrees(self, nodes: list[tuple[int, int]]) -> merkle.SubtreeHash:
        """A subtree callback answering ``nodes`` from two batched queries."""
        pieces: list[tuple[int, int]] = []

        def record(start: int, size: int) -> bytes:
            pieces.append((start, size))
            return b"\x00" * 32

        for start, end in nodes:
            merkle.node_hash(start, end, record)
        known = self.store.perfect_hashes(pieces)

        def subtree(start: int, end: int) -> bytes:
            return merkle.node_hash(start, end, lambda s, n: known[(s, n)])

        return subtree
