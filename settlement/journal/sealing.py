"""Sealing: give committed entries their journal sequence numbers, in a fixed
order, and extend the hash chain and the Merkle tree with them.

**What may be sealed.** Identity values commit out of order: a transaction can
insert entry 10, another entry 11 and commit first. Sealing 11 and later 10 would
put them out of place, and sealing "everything after the last sealed id" would
skip 10 for ever. So on PostgreSQL the sealer takes, in one statement (one
snapshot), the oldest transaction of this database still running (as
``pg_snapshot_xmin`` would, but ignoring transactions known to run in other
databases of the cluster, which cannot write here) and seals only entries written
by older transactions (``tx_id`` below it): those are all committed or rolled
back, so none can still appear before them. It takes them in
``(tx_id, id)`` order, after the last sealed entry in that order; an entry of a
transaction below the horizon that is not sealed yet cannot sort before the last
sealed one, so nothing is skipped or sealed twice. (Exact commit order is not
observable without ``track_commit_timestamp``; transaction-id order is a fixed,
reproducible order that respects it wherever it matters: an entry is sealed only
after every transaction that could precede it has ended.)

**One sealer at a time.** A sealer takes ``pg_try_advisory_xact_lock``; a second
one returns at once (``busy``) instead of waiting. Posting never waits for the
sealer: it takes no lock a writer needs, and only reads the ledger's tables.

**SQLite** (one writer at a time, no transaction ids) seals unsealed entries by id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from settlement.db.types import utcnow
from settlement.journal import reader
from settlement.journal.canonical import encode_fields
from settlement.journal.models import NODE_STRIDE
from settlement.journal.store import ZERO_HASH, JournalStore, LastLeaf, fold

DEFAULT_LIMIT = 50_000

# The horizon: the oldest transaction of THIS database still running in the
# statement's snapshot (or the snapshot's xmax). Transaction ids are cluster-wide,
# so a long transaction in another database would hold pg_snapshot_xmin back for
# nothing; one is left out only when pg_stat_activity (or pg_prepared_xacts) shows
# its id in another database, so an unknown transaction always counts as ours.
_PG_UNSEALED = """
WITH s AS MATERIALIZED (SELECT pg_current_snapshot() AS snap),
h AS MATERIALIZED (
    SELECT LEAST(pg_snapshot_xmax(s.snap)::text::bigint, (
        SELECT MIN(x::text::bigint) FROM pg_snapshot_xip(s.snap) AS x
         WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                            WHERE a.backend_xid::text::bigint = x::text::bigint %% 4294967296
                              AND a.datname IS DISTINCT FROM current_database())
           AND NOT EXISTS (SELECT 1 FROM pg_prepared_xacts p
                            WHERE p.transaction::text::bigint = x::text::bigint %% 4294967296
                              AND p.database <> current_database()))) AS horizon
      FROM s
)
SELECT NULL::bigint, NULL::bytea, NULL::bigint, e.id, e.idempotency_key, e.kind, {effective}, {recorded},
       e.description, e.metadata::text, e.reverses_entry_id, e.hold_id, p.id, p.account_id, a.code, p.side,
       p.amount, p.currency, p.pending
  FROM (SELECT e.tx_id, e.id FROM ledger_entries e
         WHERE e.tx_id >= %(tx)s AND (e.tx_id > %(tx)s OR e.id > %(id)s) AND e.tx_id < (SELECT horizon FROM h)
         ORDER BY e.tx_id, e.id LIMIT %(limit)s) AS i
  JOIN ledger_entries e ON e.id = i.id
  -- LATERAL: each entry's postings are looked up by index; a batch never scans the
  -- whole postings table, however large the ledger grows.
  LEFT JOIN LATERAL (SELECT * FROM ledger_postings p WHERE p.entry_id = e.id) AS p ON true
  LEFT JOIN ledger_accounts a ON a.id = p.account_id
 ORDER BY i.tx_id, i.id, p.id
"""

_SQLITE_UNSEALED = """
SELECT NULL, NULL, NULL, {columns}
  FROM (SELECT * FROM ledger_entries WHERE id > :id ORDER BY id LIMIT :limit) e {joins}
 ORDER BY e.id, p.id
"""


@dataclass(frozen=True, slots=True)
class SealResult:
    """How many entries this run sealed, the journal's size after it, whether
    another sealer held the lock (then nothing was done), and whether committed
    entries are left that this run could not take yet (``more``: held back by a
    running transaction, or committed since its snapshot)."""

    sealed: int
    tree_size: int
    busy: bool = False
    more: bool = False


def seal(store: JournalStore, *, limit: int = DEFAULT_LIMIT,
         clock: Callable[[], dt.datetime] = utcnow) -> SealResult:
    """Seal up to ``limit`` entries in the caller's transaction (which must commit
    for them to count). Safe to call from any number of workers at once."""
    if not store.try_lock():
        return SealResult(0, 0, busy=True)
    reader.tune(store.session)
    last = store.last_leaf()
    sql, params = _unsealed_query(store, last, limit)
    # A batch is bounded by ``limit``: read it whole (a client-side cursor is faster).
    rows = reader.rows(store.session, sql, params, server_side=False)
    seq = last.seq if last else 0
    chain = last.chain_hash if last else ZERO_HASH
    leaves: list[tuple[int, int, bytes, bytes]] = []
    sha256 = hashlib.sha256
    for entry_id, canonical in _canonical(rows, store.dialect):
        leaf = sha256(b"\x00" + canonical).digest()
        chain = sha256(chain + leaf).digest()
        seq += 1
        leaves.append((seq, entry_id, leaf, chain))
    if leaves:
        store.insert_leaves(leaves, clock())
        extend_nodes(store, leaves[0][0] - 1, [leaf for _, _, leaf, _ in leaves])
    more = len(leaves) == limit or store.unsealed_after(store.last_leaf())
    return SealResult(len(leaves), seq, more=more)


def _canonical(rows: Iterable[Sequence[Any]], dialect: str) -> Iterator[tuple[int, bytes]]:
    """(entry id, canonical bytes) of the entries in ``rows`` (as reader.group reads
    them). PostgreSQL's rows are already in final form: a tight loop does without
    the record objects, which cost as much as the hashing."""
    if dialect != "postgresql":
        for entry in reader.group(rows, dialect):
            yield entry.entry_id, entry.canonical()
        return
    current: int | None = None
    head: Sequence[Any] = ()
    postings: list[list[Any]] = []
    for row in rows:
        entry_id = row[3]
        if entry_id != current:
            if current is not None:
                yield current, _encode(head, postings)
            current, head, postings = entry_id, row, []
        if row[12] is not None:
            postings.append([row[12], row[13], row[14], row[15], row[16], row[17], row[18]])
    if current is not None:
        yield current, _encode(head, postings)


def _encode(head: Sequence[Any], postings: list[list[Any]]) -> bytes:
    metadata = head[9]
    return encode_fields(head[3], head[4], head[5], head[6], head[7], head[8] or "",
                         {} if metadata == "{}" or metadata is None else json.loads(metadata), head[10], head[11],
                         postings)


def _unsealed_query(store: JournalStore, last: LastLeaf | None, limit: int) -> tuple[str, dict[str, Any]]:
    columns = reader.entry_columns(store.dialect)
    if store.postgres:
        sql = _PG_UNSEALED.format(effective=reader.time_column(store.dialect, "e.effective_at"),
                                  recorded=reader.time_column(store.dialect, "e.recorded_at"))
        tx = last.tx_id if last and last.tx_id is not None else -1
        return sql, {"tx": tx, "id": last.entry_id if last else 0, "limit": limit}
    sql = _SQLITE_UNSEALED.format(columns=columns, joins=reader.POSTING_JOINS)
    return sql, {"id": last.entry_id if last else 0, "limit": limit}


def extend_nodes(store: JournalStore, first_index: int, new_hashes: Sequence[bytes]) -> None:
    """Store the perfect subtrees at levels NODE_STRIDE, 2 * NODE_STRIDE... that the
    leaves just appended (leaf indices from ``first_index``) complete."""
    group = 1 << NODE_STRIDE
    level, base, hashes = 0, first_index, list(new_hashes)
    while hashes:
        first_parent = base // group
        end_parent = (base + len(hashes)) // group
        if end_parent <= first_parent:
            return
        children = store.level_hashes(level, first_parent * group, base) + hashes
        parents = [fold(children[i * group:(i + 1) * group]) for i in range(end_parent - first_parent)]
        level += NODE_STRIDE
        store.insert_nodes(level, first_parent, parents)
        base, hashes = first_parent, parents
