"""Executing a run: the orchestration the Celery tasks and the CLI share. It owns its
transactions (as a task does): one per loaded chunk, one for matching, one per
group of booked chunks, so a run killed at any point resumes from its last commit.

* **load** (if the file is not loaded yet): the parser's items go in chunks of
  ``recon_load_chunk``; the file's checkpoint moves with each chunk.
* **match**: one transaction; all outcomes, claims, exceptions and settlement
  batches appear together or not at all.
* **book**: chunks of ``recon_booking_chunk`` matches, one entry each; a chunk with
  a booking row is never posted again.

Only one process executes a run at a time: on PostgreSQL a session advisory lock
held on a connection of its own for the whole execution; on SQLite an exclusive
``flock`` on a lock file beside the database (``<database>-locks/``), which every
process using that file sees. A worker that dies drops its connection (or its open
file) and so its lock; the run can then be executed again (by the task being
redelivered, by ``resume_stale_runs``, or by hand) and continues where it stopped.
Within a run's match step, a rail's files (and the statements) are matched one at a
time: an advisory transaction lock on PostgreSQL; on SQLite every transaction holds
the database's write lock from its ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, text

from adapters.base import MalformedFile
from settlement.config import Settings
from settlement.db import SessionFactory, unit_of_work
from settlement.db.types import utcnow
from settlement.errors import SettlementError
from settlement.reconciliation.errors import FileUnusable, RunInProgress
from settlement.reconciliation.models import FileKind, FileStatus, ReconFile, Run, RunStatus, Step
from settlement.reconciliation.service import booking, loading, matching, queue, runs, statements
from settlement.reconciliation.service.files import get_file, open_items
from settlement.reconciliation.service.sql import sql

log = logging.getLogger(__name__)

#: ``progress(step, done, total)``: load counts bytes read, match 0/1, book chunks.
Progress = Callable[[str, int, int], None]
#: Chunks booked per transaction.
CHUNKS_PER_COMMIT = 4


def _quiet(_step: str, _done: int, _total: int) -> None:
    return None


@contextmanager
def advisory_lock(factory: SessionFactory, key: str, *, wait: bool) -> Iterator[None]:
    """Hold a lock named ``key`` for as long as the block runs: a session advisory lock
    on a connection of its own (PostgreSQL), an exclusive ``flock`` (SQLite). Without
    ``wait``, a lock held elsewhere is ``recon_run_in_progress``."""
    engine: Engine = factory.kw["bind"]
    if engine.dialect.name != "postgresql":
        with _file_lock(engine, key, wait=wait):
            yield
        return
    with engine.connect() as connection:
        if wait:
            connection.execute(text("SELECT pg_advisory_lock(hashtextextended(:k, 0))"), {"k": key})
        elif not connection.execute(text("SELECT pg_try_advisory_lock(hashtextextended(:k, 0))"), {"k": key}).scalar():
            raise RunInProgress(f"{key} is being executed by another process", lock=key)
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(hashtextextended(:k, 0))"), {"k": key})
            connection.commit()


@contextmanager
def _file_lock(engine: Engine, key: str, *, wait: bool) -> Iterator[None]:
    """An exclusive ``flock`` on ``<database>-locks/<hash of key>.lock``. Each holder
    opens the file itself, so threads of one process exclude each other too; the lock
    goes with the process that held it."""
    database = engine.url.database
    if database and database != ":memory:":
        folder = Path(f"{Path(database).resolve()}-locks")
    else:
        folder = Path(tempfile.gettempdir()) / f"settlement-recon-locks-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.lock"
    with path.open("a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunInProgress(f"{key} is being executed by another process", lock=key) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_file(factory: SessionFactory, settings: Settings, file_id: int, *,
              progress: Progress = _quiet) -> ReconFile:
    """Load a registered file (resuming after its checkpoint); already loaded: nothing
    to do. A file that turns out unusable as a whole is marked so in one transaction
    with the items read since the last chunk (error items, and good rows, kept for
    inspection like earlier chunks': what it leaves does not depend on the chunk
    size) and an error item for the file itself; nothing else changes."""
    with advisory_lock(factory, f"recon:file:{file_id}", wait=True):
        with unit_of_work(factory) as session:
            file = get_file(session, file_id)
        if file.status in (FileStatus.LOADED.value, FileStatus.UNUSABLE.value):
            return file
        skip, size = file.loaded_items, file.size_bytes
        # Items read since the last committed chunk.
        chunk: list[loading.Item] = []
        try:
            with open_items(file, settings) as (stream, items):
                for position, item in enumerate(items):
                    if position < skip:
                        continue
                    chunk.append(item)
                    if len(chunk) >= settings.recon_load_chunk:
                        _flush(factory, file_id, chunk)
                        # The parser reads ahead: the position can reach the end early.
                        progress(Step.LOAD.value, min(stream.tell(), size - 1), size)
                        chunk = []
                _flush(factory, file_id, chunk, final=True)
                progress(Step.LOAD.value, size, size)
        except MalformedFile as error:
            with unit_of_work(factory) as session:
                if chunk:
                    loading.write_chunk(session, file_id, chunk)
                loading.mark_unusable(session, file_id, error)
        with unit_of_work(factory) as session:
            return get_file(session, file_id)


def _flush(factory: SessionFactory, file_id: int, chunk: list[loading.Item], *, final: bool = False) -> None:
    with unit_of_work(factory) as session:
        if chunk:
            loading.write_chunk(session, file_id, chunk)
        if final:
            loading.finish(session, file_id)
    if final:
        _analyze(factory, "recon_file_items", "recon_statement_lines")


def _analyze(factory: SessionFactory, *tables: str) -> None:
    """Fresh statistics after a bulk change: autovacuum comes later, and plans made on
    the old counts (a few rows where there are a million) turn joins into scans.
    (PostgreSQL; SQLite's embedded volumes plan well on its indexes alone.)"""
    with unit_of_work(factory) as session:
        if not sql(session).postgres:
            return
        for table in tables:
            session.execute(text(f"ANALYZE {table}"))


def execute(factory: SessionFactory, settings: Settings, run_id: int, *,
            progress: Progress = _quiet) -> dict[str, Any]:
    """Execute (or resume) a run to its end; returns its summary. Raises
    ``recon_run_in_progress`` when another process is executing it."""
    with advisory_lock(factory, f"recon:run:{run_id}", wait=False):
        with unit_of_work(factory) as session:
            run = runs.start(session, run_id)
            status, file_id, live = run.status, run.file_id, not run.dry_run
        if status in (RunStatus.COMPLETED.value, RunStatus.FAILED.value):
            with unit_of_work(factory) as session:
                return dict(runs.get_run(session, run_id).summary)
        try:
            file = _load_step(factory, settings, run_id, file_id, progress)
            if file.status == FileStatus.UNUSABLE.value:
                return _fail_unusable(factory, run_id, file)
            _match_step(factory, settings, run_id, progress)
            if live:
                _book_step(factory, run_id, progress)
            else:
                with unit_of_work(factory) as session:
                    runs.set_step(session, run_id, Step.BOOK, status="skipped")
                progress(Step.BOOK.value, 1, 1)
        except SettlementError as error:
            if not error.durable:
                with unit_of_work(factory) as session:
                    runs.fail(session, run_id, error.code, error.message)
            raise
        with unit_of_work(factory) as session:
            run = runs.get_run(session, run_id, lock=True)
            runs.complete(session, run)
            return dict(run.summary)


def _load_step(factory: SessionFactory, settings: Settings, run_id: int, file_id: int,
               progress: Progress) -> ReconFile:
    with unit_of_work(factory) as session:
        runs.set_step(session, run_id, Step.LOAD, status="running")

    def report(step: str, done: int, total: int) -> None:
        with unit_of_work(factory) as session:
            runs.set_step(session, run_id, Step.LOAD, done=done, total=total)
        progress(step, done, total)

    file = load_file(factory, settings, file_id, progress=report)
    with unit_of_work(factory) as session:
        runs.set_step(session, run_id, Step.LOAD, status="done", done=file.size_bytes, total=file.size_bytes)
    return file


def _fail_unusable(factory: SessionFactory, run_id: int, file: ReconFile) -> dict[str, Any]:
    with unit_of_work(factory) as session:
        run = runs.get_run(session, run_id, lock=True)
        runs.fail(session, run_id, FileUnusable.code, f"{file.filename}: {file.error_message}")
        session.flush()
        session.refresh(run)
        run.summary = runs.summarize(session, run)
        return dict(run.summary)


def _match_step(factory: SessionFactory, settings: Settings, run_id: int, progress: Progress) -> None:
    with unit_of_work(factory) as session:
        run = runs.get_run(session, run_id, lock=True)
        done = {s.step: s.status for s in runs.steps(session, run_id)}.get(Step.MATCH.value) == "done"
    if done:
        return
    progress(Step.MATCH.value, 0, 1)
    with unit_of_work(factory) as session:
        run = runs.get_run(session, run_id, lock=True)
        runs.set_step(session, run_id, Step.MATCH, status="running", total=1)
        cycle = runs.set_cycle_date(session, run)
        params = matching.MatchParams(
            run_id=run.id, file_id=run.file_id, rail=run.rail or "bank", live=not run.dry_run, cycle_date=cycle,
            window_days=settings.recon_date_window_days, tolerance=settings.recon_amount_tolerance,
            relative_tolerance=settings.recon_relative_tolerance, chunk=settings.recon_booking_chunk, now=utcnow())
        # One statement at a time (batches are shared by every statement), one live file
        # of a rail at a time (they compete for the same expectations). SQLite: the
        # transaction holds the database's write lock already.
        postgres = sql(session).postgres
        if run.kind == FileKind.STATEMENT.value:
            if postgres:
                session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended('recon:statements', 0))"))
            statements.match_statement(session, params, sla_days=settings.recon_statement_sla_days)
        else:
            if postgres:
                session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                                {"k": f"recon:rail:{run.rail}"})
            _match_settlement(session, params)
        if params.live:
            queue.open_for_run(session, run.id)
            queue.close_arrived_late(session, run.id)
        runs.set_step(session, run_id, Step.MATCH, status="done", done=1, total=1)
    _analyze(factory, "recon_matches", "recon_match_items", "recon_match_expectations")
    progress(Step.MATCH.value, 1, 1)


def _match_settlement(session: Any, params: matching.MatchParams) -> None:
    matching.prepare(session, params)
    matching.find_duplicate_lines(session)
    matching.one_to_one(session, params, exact=True)
    matching.many_to_one(session)
    matching.one_to_many(session)
    matching.one_to_one(session, params, exact=False)
    matching.record_pairs(session, params)
    matching.leftovers_mode(session)
    if params.live:
        matching.settle_expectations(session, params)
    matching.record_leftovers(session, params)
    if params.live:
        matching.create_batches(session, params)
    matching.finish(session)


def _book_step(factory: SessionFactory, run_id: int, progress: Progress) -> None:
    with unit_of_work(factory) as session:
        planned = booking.plan(session, run_id)
        already = int(session.execute(text("SELECT count(*) FROM recon_bookings WHERE run_id = :r"),
                                      {"r": run_id}).scalar_one())
        total = already + len(planned)
        runs.set_step(session, run_id, Step.BOOK, status="running", done=already, total=total)
    progress(Step.BOOK.value, already, total)
    done = already
    pending = sorted(planned)
    for start in range(0, len(pending), CHUNKS_PER_COMMIT):
        group = pending[start:start + CHUNKS_PER_COMMIT]
        with unit_of_work(factory) as session:
            booking.book_chunks(session, run_id, {chunk: planned[chunk] for chunk in group})
            done += len(group)
            runs.set_step(session, run_id, Step.BOOK, done=done, total=total)
        progress(Step.BOOK.value, done, total)
    with unit_of_work(factory) as session:
        runs.set_step(session, run_id, Step.BOOK, status="done", done=total, total=total)


def find_stale(factory: SessionFactory, settings: Settings) -> list[int]:
    """Runs that should be executing but show no sign of it: queued or running with no
    heartbeat for ``recon_stale_run_seconds``."""
    cutoff = utcnow() - dt.timedelta(seconds=settings.recon_stale_run_seconds)
    with unit_of_work(factory) as session:
        rows: Sequence[int] = session.execute(
            select(Run.id).where(Run.status.in_((RunStatus.QUEUED.value, RunStatus.RUNNING.value)),
                                 func.coalesce(Run.heartbeat_at, Run.created_at) < cutoff)
            .order_by(Run.id)).scalars().all()
    return [int(r) for r in rows]


def run_of(factory: SessionFactory, run_id: int) -> Run:
    with unit_of_work(factory) as session:
        return runs.get_run(session, run_id)
