"""Journal tasks: the periodic sealer and the periodic signed checkpoint.

Both are safe in several workers at once: one sealer holds the lock at a time and
the others return; checkpoints of the same tree size are stored once.
"""

from __future__ import annotations

from celery import shared_task

from settlement.config import get_settings
from settlement.journal.jobs import checkpoint_now, seal_pending
from settlement.journal.keys import load_signing_key
from settlement.tasks.base import DatabaseTask, task_session_factory


@shared_task(base=DatabaseTask, bind=True, name="settlement.journal.seal")
def seal(self: DatabaseTask) -> int:
    """Seal every entry that can be sealed now; returns how many."""
    return seal_pending(task_session_factory(), batch=get_settings().journal_seal_batch).sealed


@shared_task(base=DatabaseTask, bind=True, name="settlement.journal.checkpoint")
def checkpoint(self: DatabaseTask) -> int | None:
    """Seal, then sign a checkpoint if the tree grew; returns the checkpoint's tree
    size. Fails with ``signing_key_missing`` when no key is configured: the service
    never signs with a key it made up."""
    settings = get_settings()
    latest = checkpoint_now(task_session_factory(), load_signing_key(settings), batch=settings.journal_seal_batch)
    return None if latest is None else latest.tree_size
