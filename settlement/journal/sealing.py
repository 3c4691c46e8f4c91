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

**Reading ahead.** :func:`~settlement.journal.jobs.seal_pending` seals batch after
batch; on PostgreSQL a :class:`ReadAhead` reads the next batch on a connection of its
own while the current one is hashed and written, so the database's reading and the
hashing run at the same time. The batch read ahead is used only if the journal, once
this sealer holds the lock, still ends where that read started (another sealer may
have run in between); it is read below its own horizon, so nothing can still appear
before its entries.

**SQLite** (one writer at a time, no transaction ids) seals unsealed entries by id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.db.types import utcnow
from settlement.journal import reader
from settlement.journal.canonical import encode_fields
from settlement.journal.models import NODE_STRIDE
from settlement.journal.store import ZERO_HASH, JournalStore, LastLeaf, fold

DEFAULT_LIMIT = 25_000
#: Leaves go to the database in pieces of this many while a batch is hashed.
_SEND_EVERY = 2_000

# Transactions known to run in other databases of the cluster. Read in a statement
# of its own BEFORE the one that takes the horizon: a transaction that ends in
# between is then simply not in that snapshot, and one that starts in between is
# unknown and counts as ours (its id is newer than every entry already committed,
# so it holds back nothing that could be sealed now). Read the other way round, a
# transaction that ended in between would look like ours and hold the horizon back
# to its (old) id for that round.
_PG_OTHER_DATABASES = """
SELECT COALESCE(array_agg(x), '{}') FROM (
    SELECT backend_xid::text::bigint AS x FROM pg_stat_activity
     WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database()
    UNION ALL
    SELECT transaction::text::bigint FROM pg_prepared_xacts WHERE database <> current_database()) AS o
"""

# The horizon: the oldest transaction of THIS database still running in the
# statement's snapshot (or the snapshot's xmax). Transaction ids are cluster-wide,
# so a long transaction in another database would hold pg_snapshot_xmin back for
# nothing; one is left out only when it is known to run elsewhere (``others``, read
# just before, as 32-bit ids), so an unknown transaction always counts as ours.
_PG_UNSEALED = """
WITH s AS MATERIALIZED (SELECT pg_current_snapshot() AS snap),
h AS MATERIALIZED (
    SELECT LEAST(pg_snapshot_xmax(s.snap)::text::bigint, (
        SELECT MIN(x::text::bigint) FROM pg_snapshot_xip(s.snap) AS x
         WHERE NOT (x::text::bigint %% 4294967296 = ANY(%(others)s::bigint[])))) AS horizon
      FROM s
)
SELECT NULL::bigint, NULL::bytea, e.tx_id, e.id, e.idempotency_key, e.kind, e.effective, e.recorded,
       e.description, e.metadata::text, e.reverses_entry_id, e.hold_id, p.id, p.account_id, a.code, p.side,
       p.amount, p.currency, p.pending
       -- A row comparison: the (tx_id, id) index is walked from the last sealed entry
       -- in order, fetching each entry as it goes (never a scan of the whole table),
       -- and the walk stops after the batch. Times are formatted once per entry.
  FROM (SELECT e.*, {effective} AS effective, {recorded} AS recorded FROM ledger_entries e
         WHERE (e.tx_id, e.id) > (%(tx)s, %(id)s) AND e.tx_id < (SELECT horizon FROM h)
         ORDER BY e.tx_id, e.id LIMIT %(limit)s) AS e
  -- Each entry's postings are looked up by index (OFFSET 0 keeps this a lookup per
  -- entry: the planner may not turn it into a join that reads the whole table).
  LEFT JOIN LATERAL (SELECT * FROM ledger_postings p WHERE p.entry_id = e.id OFFSET 0) AS p ON true
  LEFT JOIN ledger_accounts a ON a.id = p.account_id
 -- Already in (tx_id, id) order: only each entry's few postings are sorted.
 ORDER BY e.tx_id, e.id, p.id
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


class ReadAhead:
    """Reads the next batch of unsealed entries (PostgreSQL) in a thread, on its own
    connection, while the caller seals the current one."""

    def __init__(self, factory: Callable[[], Session]) -> None:
        self.factory = factory
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-read-ahead")
        self.pending: tuple[tuple[int, int, int], Future[list[Sequence[Any]]]] | None = None

    def start(self, tx_id: int, entry_id: int, limit: int) -> None:
        """Begin reading the ``limit`` entries after ``(tx_id, entry_id)``."""
        self.discard()
        self.pending = ((tx_id, entry_id, limit), self.pool.submit(self._read, tx_id, entry_id, limit))

    def take(self, last: LastLeaf | None, limit: int) -> list[Sequence[Any]] | None:
        """The batch read ahead if it starts right after ``last``, else None."""
        if self.pending is None or last is None or last.tx_id is None:
            return None
        (tx_id, entry_id, wanted), future = self.pending
        self.pending = None
        if (tx_id, entry_id, wanted) != (last.tx_id, last.entry_id, limit):
            future.cancel()
            return None
        return future.result()

    def discard(self) -> None:
        if self.pending is not None:
            self.pending[1].cancel()
            self.pending = None

    def close(self) -> None:
        self.discard()
        self.pool.shutdown(wait=True)

    def _read(self, tx_id: int, entry_id: int, limit: int) -> list[Sequence[Any]]:
        with self.factory() as session:
            _tune(session)
            sql = _PG_UNSEALED.format(effective=reader.time_column("postgresql", "e.effective_at"),
                                      recorded=reader.time_column("postgresql", "e.recorded_at"))
            params = {"tx": tx_id, "id": entry_id, "limit": limit, "others": _other_databases(session)}
            rows = list(reader.rows(session, sql, params, server_side=False))
            session.rollback()
        return rows


def seal(store: JournalStore, *, limit: int = DEFAULT_LIMIT,
         clock: Callable[[], dt.datetime] = utcnow, read_ahead: ReadAhead | None = None) -> SealResult:
    """Seal up to ``limit`` entries in the caller's transaction (which must commit
    for them to count). Safe to call from any number of workers at once. With
    ``read_ahead`` (PostgreSQL), the next batch is read meanwhile."""
    if not store.try_lock():
        return SealResult(0, 0, busy=True)
    _tune(store.session)
    last = store.last_leaf()
    rows = read_ahead.take(last, limit) if read_ahead is not None else None
    if rows is None:
        sql, params = _unsealed_query(store, last, limit)
        # A batch is bounded by ``limit``: read it whole (a client-side cursor is faster).
        rows = list(reader.rows(store.session, sql, params, server_side=False))
    if read_ahead is not None and store.postgres and rows and _entries_in(rows) == limit:
        read_ahead.start(int(rows[-1][2]), int(rows[-1][3]), limit)
    seq = last.seq if last else 0
    chain = last.chain_hash if last else ZERO_HASH
    leaves: list[tuple[int, int, bytes, bytes]] = []
    sha256 = hashlib.sha256
    with store.leaf_sink(clock()) as store_leaves:
        sent = 0
        for entry_id, canonical in _canonical(rows, store.dialect):
            leaf = sha256(b"\x00" + canonical).digest()
            chain = sha256(chain + leaf).digest()
            seq += 1
            leaves.append((seq, entry_id, leaf, chain))
            if len(leaves) - sent == _SEND_EVERY:  # the server stores these while the next are hashed
                store_leaves(leaves[sent:])
                sent = len(leaves)
        store_leaves(leaves[sent:])
    if leaves:
        extend_nodes(store, leaves[0][0] - 1, [leaf for _, _, leaf, _ in leaves])
    more = len(leaves) == limit or store.unsealed_after(store.last_leaf())
    return SealResult(len(leaves), seq, more=more)


def _entries_in(rows: Sequence[Sequence[Any]]) -> int:
    """How many entries a batch's rows (one or more per entry, grouped) hold."""
    count, current = 0, None
    for row in rows:
        if row[3] != current:
            count, current = count + 1, row[3]
    return count


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
        return sql, {"tx": tx, "id": last.entry_id if last else 0, "limit": limit,
                     "others": _other_databases(store.session)}
    sql = _SQLITE_UNSEALED.format(columns=columns, joins=reader.POSTING_JOINS)
    return sql, {"id": last.entry_id if last else 0, "limit": limit}


def _tune(session: Session) -> None:
    """A batch's read is index lookups all the way: compiling it (JIT, which its
    estimated cost would trigger) takes longer than it saves."""
    reader.tune(session)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))


def _other_databases(session: Session) -> list[int]:
    """Ids of the transactions now running in other databases (see _PG_OTHER_DATABASES)."""
    return list(session.execute(text(_PG_OTHER_DATABASES)).scalar_one())


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
