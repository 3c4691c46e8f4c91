"""Sealing and checkpointing as whole jobs: each batch in its own transaction.

Tasks, commands and exports call these with a session factory; the service
itself (:class:`~settlement.journal.Journal`) only works inside a transaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from settlement.db import SessionFactory, unit_of_work
from settlement.journal.keys import SigningKey
from settlement.journal.sealing import ReadAhead
from settlement.journal.service import Journal
from settlement.journal.store import CheckpointRow

#: How long to wait for another sealer, or for a running transaction that holds
#: committed entries back, before giving up on "seal everything now".
BUSY_WAIT_SECONDS = 60
#: Without ``wait``: how long to retry when committed entries were held back. A
#: round can come back short for an instant (a short transaction of this database
#: was running, or one elsewhere started just before the horizon was taken and so
#: counts as ours); a second look settles it.
SHORT_RETRY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class SealRun:
    sealed: int
    tree_size: int
    busy: bool


def seal_pending(factory: SessionFactory, *, batch: int, wait: bool = False,
                 wait_seconds: float = BUSY_WAIT_SECONDS) -> SealRun:  # float-ok: seconds
    """Seal batches until nothing sealable is left. When another worker holds the
    sealer's lock, return at once (``busy``), or with ``wait`` retry until it is
    free (an export wants everything sealed before it reads). When committed
    entries are held back by a running transaction, look again for a moment (with
    ``wait``: until it ends, up to ``wait_seconds``)."""
    read_ahead = ReadAhead(factory) if _postgres(factory) else None
    try:
        return _seal_rounds(factory, batch, wait, wait_seconds, read_ahead)
    finally:
        if read_ahead is not None:
            read_ahead.close()


def _seal_rounds(factory: SessionFactory, batch: int, wait: bool, wait_seconds: float,  # float-ok: seconds
                 read_ahead: ReadAhead | None) -> SealRun:
    total, size = 0, 0
    began = time.monotonic()
    while True:
        with unit_of_work(factory) as session:
            result = Journal(session).seal(limit=batch, read_ahead=read_ahead)
        waited = time.monotonic() - began
        if result.busy:
            if not wait or waited > wait_seconds:
                return SealRun(total, size, True)
            time.sleep(0.05)
            continue
        total, size = total + result.sealed, result.tree_size
        if result.sealed == batch:
            continue
        if not result.more or waited > (wait_seconds if wait else SHORT_RETRY_SECONDS):
            return SealRun(total, size, False)
        time.sleep(0.02)


def _postgres(factory: SessionFactory) -> bool:
    with factory() as session:
        return session.get_bind().dialect.name == "postgresql"


def checkpoint_now(factory: SessionFactory, key: SigningKey, *, batch: int, wait: bool = False,
                   wait_seconds: float = BUSY_WAIT_SECONDS) -> CheckpointRow | None:  # float-ok: seconds
    """Seal what can be sealed, then sign a checkpoint if the tree grew. Returns
    the latest checkpoint (None while nothing is sealed)."""
    seal_pending(factory, batch=batch, wait=wait, wait_seconds=wait_seconds)
    with unit_of_work(factory) as session:
        journal = Journal(session)
        journal.checkpoint(key)
        return journal.store.checkpoint()
