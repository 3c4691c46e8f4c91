"""The journal's SQL: leaves, stored subtree hashes, checkpoints.

Reads of stored hashes are batched: a proof or a checkpoint root needs O(log n)
perfect subtrees, and :meth:`JournalStore.perfect_hashes` answers all of them with
two queries whatever their number.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from settlement.db.types import UTCDateTime
from settlement.journal.merkle import hash_children
from settlement.journal.models import NODE_STRIDE

#: Key of the advisory lock that makes one sealer run at a time (any fixed bigint;
#: this one is "journal" in ASCII).
SEAL_LOCK_KEY = 0x6A6F75726E616C

ZERO_HASH = b"\x00" * 32
_TIME = UTCDateTime()


@dataclass(frozen=True, slots=True)
class LastLeaf:
    seq: int
    chain_hash: bytes
    entry_id: int
    tx_id: int | None


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    tree_size: int
    root_hash: bytes
    chain_head: bytes
    created_at: dt.datetime
    origin: str
    key_id: str
    signature: bytes
    note: str


_CHECKPOINT_COLUMNS = "tree_size, root_hash, chain_head, created_at, origin, key_id, signature, note"


class JournalStore:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    @property
    def postgres(self) -> bool:
        return self.dialect == "postgresql"

    def _time(self, value: Any) -> dt.datetime:
        stamp = _TIME.process_result_value(value, self.session.get_bind().dialect)
        assert stamp is not None
        return stamp

    def _bind_time(self, value: dt.datetime) -> Any:
        return _TIME.process_bind_param(value, self.session.get_bind().dialect)

    # -- sealing ----------------------------------------------------------------------

    def try_lock(self) -> bool:
        """Take the sealer's lock for this transaction, without waiting. SQLite
        transactions already exclude each other (BEGIN IMMEDIATE)."""
        if not self.postgres:
            return True
        return bool(self.session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"),
                                         {"k": SEAL_LOCK_KEY}).scalar_one())

    def last_leaf(self) -> LastLeaf | None:
        row = self.session.execute(text(
            "SELECT l.seq, l.chain_hash, l.entry_id, e.tx_id FROM journal_leaves l "
            "LEFT JOIN ledger_entries e ON e.id = l.entry_id ORDER BY l.seq DESC LIMIT 1")).first()
        if row is None:
            return None
        return LastLeaf(int(row[0]), bytes(row[1]), int(row[2]), None if row[3] is None else int(row[3]))

    def unsealed_after(self, last: LastLeaf | None) -> bool:
        """Whether a committed entry (visible to a new snapshot) follows ``last`` in
        sealing order."""
        if self.postgres:
            if last is None or last.tx_id is None:
                found = self.session.execute(text("SELECT 1 FROM ledger_entries LIMIT 1")).first()
            else:
                found = self.session.execute(text(
                    "SELECT 1 FROM ledger_entries WHERE (tx_id, id) > (:tx, :id) LIMIT 1"),
                    {"tx": last.tx_id, "id": last.entry_id}).first()
        else:
            found = self.session.execute(text("SELECT 1 FROM ledger_entries WHERE id > :id LIMIT 1"),
                                         {"id": last.entry_id if last else 0}).first()
        return found is not None

    def tree_size(self) -> int:
        return int(self.session.execute(text("SELECT COALESCE(MAX(seq), 0) FROM journal_leaves")).scalar_one())

    @contextmanager
    def leaf_sink(self, sealed_at: dt.datetime) -> Iterator[Callable[[Sequence[tuple[int, int, bytes, bytes]]], None]]:
        """A function that appends ``(seq, entry_id, leaf_hash, chain_hash)`` rows,
        called as often as the caller likes until the block ends. On PostgreSQL the
        rows go down one COPY as they come, so the server stores the first while the
        caller hashes the next; its statement trigger checks them all at the end."""
        if not self.postgres:
            stamp = self._bind_time(sealed_at)
            insert = text("INSERT INTO journal_leaves (seq, entry_id, leaf_hash, chain_hash, sealed_at) "
                          "VALUES (:s, :e, :l, :c, :t)")

            def add_rows(rows: Sequence[tuple[int, int, bytes, bytes]]) -> None:
                if rows:
                    self.session.execute(insert, [{"s": r[0], "e": r[1], "l": r[2], "c": r[3], "t": stamp}
                                                  for r in rows])

            yield add_rows
            return
        pg_stamp = sealed_at.isoformat()
        connection = self.session.connection().connection.driver_connection
        assert connection is not None
        with connection.cursor() as cursor, ExitStack() as stack:
            copy: Any = None

            def send(rows: Sequence[tuple[int, int, bytes, bytes]]) -> None:
                nonlocal copy
                if not rows:
                    return
                if copy is None:  # opened on the first rows: no rows, no statement
                    copy = stack.enter_context(cursor.copy(
                        "COPY journal_leaves (seq, entry_id, leaf_hash, chain_hash, sealed_at) FROM STDIN"))
                # COPY's text format, written by hand: bytea as \\x<hex> (the backslash escaped).
                copy.write("".join([f"{s}\t{e}\t\\\\x{leaf.hex()}\t\\\\x{chain.hex()}\t{pg_stamp}\n"
                                    for s, e, leaf, chain in rows]).encode())

            yield send

    def insert_nodes(self, level: int, first_idx: int, hashes: Sequence[bytes]) -> None:
        if not hashes:
            return
        if self.postgres:
            self._copy_text("COPY journal_nodes (level, idx, hash) FROM STDIN",
                            [f"{level}\t{first_idx + n}\t\\\\x{h.hex()}\n" for n, h in enumerate(hashes)])
            return
        self.session.execute(text("INSERT INTO journal_nodes (level, idx, hash) VALUES (:lv, :i, :h)"),
                             [{"lv": level, "i": first_idx + n, "h": h} for n, h in enumerate(hashes)])

    def _copy_text(self, statement: str, lines: Sequence[str]) -> None:
        """COPY lines in (text format) on the session's own connection, inside its
        transaction: the fastest way in, and the statement triggers still check the
        batch."""
        connection = self.session.connection().connection.driver_connection
        assert connection is not None
        with connection.cursor() as cursor, cursor.copy(statement) as copy:
            for start in range(0, len(lines), 10_000):
                copy.write("".join(lines[start:start + 10_000]).encode())

    # -- stored hashes ----------------------------------------------------------------

    def level_hashes(self, level: int, start: int, end: int) -> list[bytes]:
        """Stored hashes of ``level`` (0: leaves) for indices [start, end), in order."""
        if end <= start:
            return []
        if level == 0:
            rows = self.session.execute(text(
                "SELECT leaf_hash FROM journal_leaves WHERE seq > :a AND seq <= :b ORDER BY seq"),
                {"a": start, "b": end}).all()
        else:
            rows = self.session.execute(text(
                "SELECT hash FROM journal_nodes WHERE level = :lv AND idx >= :a AND idx < :b ORDER BY idx"),
                {"lv": level, "a": start, "b": end}).all()
        if len(rows) != end - start:
            raise LookupError(f"journal level {level} lacks hashes in [{start}, {end})")
        return [bytes(r[0]) for r in rows]

    def perfect_hashes(self, pieces: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Hashes of perfect subtrees given as (start leaf, size), each rebuilt from
        at most 2^(stride - 1) stored hashes of the nearest stored level below."""
        wanted: dict[tuple[int, int], tuple[int, int, int]] = {}
        leaf_seqs: set[int] = set()
        node_keys: dict[int, set[int]] = {}
        for start, size in set(pieces):
            level = size.bit_length() - 1
            stored = level - level % NODE_STRIDE
            first, count = start >> stored, size >> stored
            wanted[(start, size)] = (stored, first, count)
            if stored == 0:
                leaf_seqs.update(range(first + 1, first + count + 1))
            else:
                node_keys.setdefault(stored, set()).update(range(first, first + count))
        found: dict[tuple[int, int], bytes] = {}
        if leaf_seqs:
            stmt = text("SELECT seq, leaf_hash FROM journal_leaves WHERE seq IN :seqs").bindparams(
                bindparam("seqs", expanding=True))
            for found_row in self.session.execute(stmt, {"seqs": sorted(leaf_seqs)}):
                found[(0, int(found_row[0]) - 1)] = bytes(found_row[1])
        for level, indices in node_keys.items():
            stmt = text("SELECT idx, hash FROM journal_nodes WHERE level = :lv AND idx IN :ids").bindparams(
                bindparam("ids", expanding=True))
            for found_row in self.session.execute(stmt, {"lv": level, "ids": sorted(indices)}):
                found[(level, int(found_row[0]))] = bytes(found_row[1])
        out: dict[tuple[int, int], bytes] = {}
        for piece, (level, first, count) in wanted.items():
            try:
                row = [found[(level, i)] for i in range(first, first + count)]
            except KeyError:
                raise LookupError(f"journal lacks the stored hashes of subtree {piece}") from None
            out[piece] = fold(row)
        return out

    # -- checkpoints ------------------------------------------------------------------

    def insert_checkpoint(self, row: CheckpointRow) -> bool:
        """Store a checkpoint; False if one of that size exists already."""
        result = self.session.execute(text(
            "INSERT INTO journal_checkpoints (tree_size, root_hash, chain_head, created_at, origin, key_id, "
            "signature, note) VALUES (:n, :r, :c, :t, :o, :k, :s, :note) ON CONFLICT (tree_size) DO NOTHING"),
            {"n": row.tree_size, "r": row.root_hash, "c": row.chain_head, "t": self._bind_time(row.created_at),
             "o": row.origin, "k": row.key_id, "s": row.signature, "note": row.note})
        return bool(getattr(result, "rowcount", 0))

    def checkpoint(self, tree_size: int | None = None) -> CheckpointRow | None:
        """The checkpoint of that size, or the latest one."""
        if tree_size is None:
            row = self.session.execute(text(
                f"SELECT {_CHECKPOINT_COLUMNS} FROM journal_checkpoints ORDER BY tree_size DESC LIMIT 1")).first()
        else:
            row = self.session.execute(text(
                f"SELECT {_CHECKPOINT_COLUMNS} FROM journal_checkpoints WHERE tree_size = :n"),
                {"n": tree_size}).first()
        return None if row is None else self._checkpoint(row)

    def checkpoints(self, *, before: int | None, limit: int) -> list[CheckpointRow]:
        """Checkpoints newest first, smaller than ``before`` when given."""
        rows = self.session.execute(text(
            f"SELECT {_CHECKPOINT_COLUMNS} FROM journal_checkpoints WHERE tree_size < :before "
            "ORDER BY tree_size DESC LIMIT :limit"), {"before": before if before is not None else 2**62,
                                                      "limit": limit}).all()
        return [self._checkpoint(r) for r in rows]

    def all_checkpoints(self, up_to: int) -> list[CheckpointRow]:
        rows = self.session.execute(text(
            f"SELECT {_CHECKPOINT_COLUMNS} FROM journal_checkpoints WHERE tree_size <= :n ORDER BY tree_size"),
            {"n": up_to}).all()
        return [self._checkpoint(r) for r in rows]

    def _checkpoint(self, r: Sequence[Any]) -> CheckpointRow:
        return CheckpointRow(int(r[0]), bytes(r[1]), bytes(r[2]), self._time(r[3]), r[4], r[5], bytes(r[6]), r[7])

    # -- entries ----------------------------------------------------------------------

    def leaf_of_entry(self, entry_id: int) -> tuple[int, bytes] | None:
        row = self.session.execute(text("SELECT seq, leaf_hash FROM journal_leaves WHERE entry_id = :e"),
                                   {"e": entry_id}).first()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def entry_exists(self, entry_id: int) -> bool:
        return self.session.execute(text("SELECT 1 FROM ledger_entries WHERE id = :e"),
                                    {"e": entry_id}).first() is not None

    def chain_at(self, seq: int) -> bytes:
        if seq == 0:
            return ZERO_HASH
        row = self.session.execute(text("SELECT chain_hash FROM journal_leaves WHERE seq = :s"), {"s": seq}).first()
        if row is None:
            raise LookupError(f"journal has no leaf {seq}")
        return bytes(row[0])


def fold(hashes: Sequence[bytes]) -> bytes:
    """Root of a perfect subtree from its 2^k leftmost-to-rightmost child hashes."""
    level = list(hashes)
    while len(level) > 1:
        level = [hash_children(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]
