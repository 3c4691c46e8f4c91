"""Reconciliation tasks: load a file, execute a run, the daily inbox pickup, and the
restart of runs whose worker died.

Every task takes ids and is safe to run twice: loading resumes after the file's
checkpoint, a run resumes after its last committed step or chunk (and a second
worker finding it locked leaves it to the first), a file already registered is
recognised by its SHA-256.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from celery import shared_task
from sqlalchemy.orm import Session

from adapters.registry import default_registry
from settlement.config import Settings, get_settings
from settlement.errors import SettlementError
from settlement.reconciliation import runner
from settlement.reconciliation.errors import RunInProgress
from settlement.reconciliation.models import FileKind
from settlement.reconciliation.service import files, runs
from settlement.tasks.base import DatabaseTask, send_after_commit, task_session_factory

log = logging.getLogger(__name__)

STATEMENT_INBOX = "statement"
INBOX_ACTOR = "system:inbox"
IMPORT_FILE = "settlement.reconciliation.import_settlement_file"
RUN = "settlement.reconciliation.run_reconciliation"


def enqueue(session: Session, name: str, *args: Any) -> None:
    """Send task ``name`` of the configured Celery app once ``session`` commits."""
    from settlement.tasks.app import get_celery

    send_after_commit(session, get_celery().tasks[name], *args)


def _send(name: str, *args: Any) -> None:
    from settlement.tasks.app import get_celery

    get_celery().tasks[name].delay(*args)


@shared_task(base=DatabaseTask, bind=True, name=IMPORT_FILE)
def import_settlement_file(self: DatabaseTask, file_id: int) -> dict[str, Any]:
    """Load a registered file (settlement file or statement) into its items."""
    loaded = runner.load_file(task_session_factory(), get_settings(), file_id)
    return {"file_id": loaded.id, "status": loaded.status, "records": loaded.record_count,
            "errors": loaded.error_count, "error_code": loaded.error_code}


@shared_task(base=DatabaseTask, bind=True, name=RUN)
def run_reconciliation(self: DatabaseTask, run_id: int) -> dict[str, Any]:
    """Execute (or resume) a run; returns its summary."""
    try:
        return runner.execute(task_session_factory(), get_settings(), run_id)
    except RunInProgress:
        log.info("run %s is being executed by another worker", run_id)
        return {"run_id": run_id, "skipped": "in progress elsewhere"}
    except SettlementError as refusal:
        # A refusal is recorded on the run (failed, with its code): nothing to retry.
        log.warning("run %s failed: [%s] %s", run_id, refusal.code, refusal.message)
        return {"run_id": run_id, "error_code": refusal.code, "error": refusal.message}


@shared_task(base=DatabaseTask, bind=True, name="settlement.reconciliation.resume_stale_runs")
def resume_stale_runs(self: DatabaseTask) -> list[int]:
    """Send again the runs that are queued or running without a heartbeat (their
    message was lost or their worker died)."""
    stale = runner.find_stale(task_session_factory(), get_settings())
    for run_id in stale:
        _send(RUN, run_id)
    return stale


def inbox_folder(settings: Settings, name: str) -> Path:
    return settings.recon_inbox.get(name) or settings.data_dir / "inbox" / name


@shared_task(base=DatabaseTask, bind=True, name="settlement.reconciliation.pickup_inboxes")
def pickup_inboxes(self: DatabaseTask) -> list[dict[str, Any]]:
    """Every rail's inbox folder (and the ``statement`` folder): each file is
    registered, moved to ``processed/`` beside it, and reconciled by a live run
    (a file seen before is recognised by its bytes and not applied again)."""
    settings = get_settings()
    picked: list[dict[str, Any]] = []
    for name in [*default_registry().names(), STATEMENT_INBOX]:
        folder = inbox_folder(settings, name)
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
            picked.append(_pick(self, settings, name, path))
    return picked


def _pick(task: DatabaseTask, settings: Settings, name: str, path: Path) -> dict[str, Any]:
    kind = FileKind.STATEMENT if name == STATEMENT_INBOX else FileKind.SETTLEMENT
    with task.unit_of_work() as session, path.open("rb") as source:
        registered = files.register_file(session, settings, kind=kind, rail=None if kind is FileKind.STATEMENT
                                         else name, source=source, filename=path.name, actor=INBOX_ACTOR)
        existing = runs.live_run_of(session, registered.file.id)
        run = existing or runs.create_run(session, file_id=registered.file.id, dry_run=False, actor=INBOX_ACTOR)
        if existing is None:
            enqueue(session, RUN, run.id)
        outcome = {"inbox": name, "file": path.name, "file_id": registered.file.id, "run_id": run.id,
                   "new": registered.created and existing is None}
    done = path.parent / "processed"
    done.mkdir(exist_ok=True)
    shutil.move(str(path), str(done / path.name))
    return outcome
