"""Journal tables. The ledger's entries and postings are never touched: sealing
lives in tables of its own, all append-only (PostgreSQL triggers refuse UPDATE,
DELETE and TRUNCATE).

* ``journal_leaves``: one row per sealed entry. ``seq`` is the gapless journal
  sequence number (1, 2, 3...; the Merkle leaf index is ``seq - 1``), ``leaf_hash``
  the RFC 9162 leaf hash of the entry's canonical bytes, ``chain_hash`` =
  SHA-256(previous chain_hash || leaf_hash) (32 zero bytes before the first).
  PostgreSQL refuses a batch of leaves that does not continue the sequence and the
  chain exactly.
* ``journal_nodes``: hashes of complete perfect subtrees at levels 4, 8, 12...
  (``idx`` counts subtrees of that level from the left). A proof needs O(log n) of
  them, each rebuilt from at most 16 stored hashes of the level below; they cost
  one row per 16 leaves.
* ``journal_checkpoints``: signed tree heads, as signed notes (see notes.py).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, CheckConstraint, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from settlement.db.base import Base
from settlement.db.types import UTCDateTime

#: Levels persisted in journal_nodes are the multiples of this.
NODE_STRIDE = 4


class JournalLeaf(Base):
    __tablename__ = "journal_leaves"
    __table_args__ = (
        CheckConstraint("seq >= 1", name="seq_positive"),
        CheckConstraint("length(leaf_hash) = 32 AND length(chain_hash) = 32", name="hash_length"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    #: The sealed ledger entry (no foreign key: see the migration 0003_journal).
    entry_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary)
    chain_hash: Mapped[bytes] = mapped_column(LargeBinary)
    sealed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class JournalNode(Base):
    __tablename__ = "journal_nodes"
    __table_args__ = (CheckConstraint("level > 0 AND idx >= 0 AND length(hash) = 32", name="node"),)

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary)


class JournalCheckpoint(Base):
    __tablename__ = "journal_checkpoints"
    __table_args__ = (CheckConstraint("tree_size >= 1", name="tree_size_positive"),)

    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary)
    chain_head: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    origin: Mapped[str] = mapped_column(String(200))
    #: Hex of the signed-note key ID (4 bytes) of the key that signed it.
    key_id: Mapped[str] = mapped_column(String(8))
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    #: The whole signed note, as published.
    note: Mapped[str] = mapped_column(Text)
