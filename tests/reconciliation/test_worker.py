"""Real Celery workers (``celery -A settlement.tasks worker``) with Redis as the broker
(a database number of their own): they load and reconcile; a worker killed in the
middle of a run is replaced, the run is sent again, and it ends exactly as the same
run does uninterrupted, nothing booked twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from settlement.db import unit_of_work
from settlement.reconciliation import runner
from settlement.reconciliation.service import runs
from settlement.reconciliation.tasks import IMPORT_FILE, RUN
from tests.broker import own_queue, sending_app
from tests.conftest import Database, _fresh_pg
from tests.reconciliation.factories import Harness, ops, settings_for, write_file

BROKER = os.environ.get("SETTLEMENT_TEST_RECON_REDIS_URL", "redis://127.0.0.1:6379/11")
PROJECT = Path(__file__).resolve().parents[2]
#: Per step to interrupt: records in the file, lines loaded per transaction, matches
#: booked per entry. Small chunks keep the run in that step long enough to catch it there.
SIZES = {"load": (20_000, 100, 5_000), "book": (6_000, 5_000, 40)}


@pytest.fixture
def queue() -> Iterator[str]:
    yield from own_queue(BROKER, "recon-test")


@pytest.fixture
def broker_app(monkeypatch: pytest.MonkeyPatch, queue: str) -> Iterator[Celery]:
    yield from sending_app(monkeypatch, BROKER, queue)


@pytest.fixture
def start_worker(pg_database: Database, queue: str, tmp_path: Path,
                 broker_app: Celery) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    celery = Path(sys.executable).with_name("celery")

    def start(**settings: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "SETTLEMENT_DATABASE_URL": pg_database.url, "SETTLEMENT_BROKER_URL": BROKER,
               "SETTLEMENT_DATA_DIR": str(tmp_path / "data"), **settings}
        log = (tmp_path / f"worker-{len(started)}.log").open("wb")
        process = subprocess.Popen(
            [str(celery), "-A", "settlement.tasks", "worker", "-Q", queue, "--pool=solo", "--loglevel=INFO",
             "--without-heartbeat", "--without-gossip", "--without-mingle"],
            cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGQUIT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def reference_db(pg_template: str, worker_tag: str) -> Iterator[Database]:
    """A second database, for the same run uninterrupted."""
    yield from _fresh_pg(pg_template, worker_tag)


def _wait(condition: Callable[[], Any], what: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _prepare(recon: Harness, count: int) -> tuple[int, int]:
    """Expectations and a registered file of ``count`` lines with a few discrepancies;
    returns (file id, run id)."""
    batch = ops("mir", count)
    recon.expect(*batch)
    records = [op.record(fee_delta=3 if n % 97 == 0 else 0) for n, op in enumerate(batch) if n % 101]
    unknown = ops("mir", 1, start=90_000)[0].record()
    file_id, _ = recon.register(write_file("mir", [*records, unknown]))
    with unit_of_work(recon.factory) as session:
        run_id = runs.create_run(session, file_id=file_id, dry_run=False, actor="cli:tester").id
    return file_id, run_id


def _picture(recon: Harness, run_id: int) -> dict[str, Any]:
    """Everything a run decided and booked, independent of ids."""
    return {
        "outcomes": recon.outcomes(run_id),
        "pairs": sorted((r["outcome"], r["items"], r["expected"]) for r in recon.results(run_id)),
        "balances": recon.balances(),
        "booked": recon.sql("SELECT count(*), sum(match_count) FROM recon_bookings WHERE run_id = :r", r=run_id),
        "entries_for_chunks": recon.scalar("SELECT count(*) FROM ledger_entries WHERE kind = "
                                           "'reconciliation.settlement'") == recon.scalar(
            "SELECT count(DISTINCT batch_no) FROM recon_matches WHERE run_id = :r AND batch_no IS NOT NULL",
            r=run_id),
        "exceptions": sorted(k for (k,) in recon.sql("SELECT kind FROM recon_exceptions")),
        "file": recon.sql("SELECT status, record_count, error_count FROM recon_files"),
    }


def test_a_worker_imports_and_reconciles_over_redis(pg_database: Database, tmp_path: Path, broker_app: Celery,
                                                    start_worker: Callable[..., subprocess.Popen[bytes]]) -> None:
    recon = Harness(pg_database.factory, settings_for(pg_database.url, tmp_path / "data"))
    batch = ops("mir", 20)
    recon.expect(*batch)
    file_id, _ = recon.register(write_file("mir", [op.record() for op in batch[:19]]))
    start_worker()
    broker_app.tasks[IMPORT_FILE].delay(file_id)
    _wait(lambda: recon.sql("SELECT status FROM recon_files WHERE status = 'loaded'"), "the import")
    with unit_of_work(recon.factory) as session:
        run_id = runs.create_run(session, file_id=file_id, dry_run=False, actor="cli:tester").id
    broker_app.tasks[RUN].delay(run_id)
    _wait(lambda: recon.scalar("SELECT status FROM recon_runs WHERE id = :r", r=run_id) == "completed", "the run")
    assert recon.outcomes(run_id) == {"matched": 19}
    assert recon.balance("rail:mir:receivable:RUB") == -sum(op.amount for op in batch[:19])


@pytest.mark.parametrize("step", ["load", "book"])
def test_a_run_killed_halfway_resumes_to_the_same_result(
        step: str, pg_database: Database, reference_db: Database, tmp_path: Path, broker_app: Celery,
        start_worker: Callable[..., subprocess.Popen[bytes]]) -> None:
    count, load_chunk, booking_chunk = SIZES[step]
    chunks = {"SETTLEMENT_RECON_LOAD_CHUNK": str(load_chunk), "SETTLEMENT_RECON_BOOKING_CHUNK": str(booking_chunk)}
    # The same run, uninterrupted, in a database of its own.
    reference = Harness(reference_db.factory, settings_for(reference_db.url, tmp_path / "ref",
                                                           recon_load_chunk=load_chunk,
                                                           recon_booking_chunk=booking_chunk))
    _, reference_run = _prepare(reference, count)
    runner.execute(reference.factory, reference.settings, reference_run)

    recon = Harness(pg_database.factory, settings_for(pg_database.url, tmp_path / "data"))
    _, run_id = _prepare(recon, count)
    first = start_worker(**chunks)
    broker_app.tasks[RUN].delay(run_id)

    def midway() -> bool:
        rows = recon.sql("SELECT status, done, total FROM recon_run_steps WHERE run_id = :r AND step = :s",
                         r=run_id, s=step)
        return bool(rows) and rows[0][0] == "running" and rows[0][1] > 0

    _wait(midway, f"the {step} step under way")
    first.send_signal(signal.SIGSTOP)
    ((status, done, total),) = recon.sql("SELECT status, done, total FROM recon_run_steps WHERE run_id = :r AND "
                                         "step = :s", r=run_id, s=step)
    assert status == "running"
    assert done < total, f"the {step} step ended before the worker could be stopped"
    first.send_signal(signal.SIGKILL)
    first.wait()
    # The dead worker's connection (and its advisory lock on the run) goes away.
    _wait(lambda: recon.scalar("SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                               "WHERE l.locktype = 'advisory' AND d.datname = current_database()") == 0,
          "the killed worker's lock to go")
    assert recon.scalar("SELECT status FROM recon_runs WHERE id = :r", r=run_id) == "running"

    start_worker(**chunks)
    broker_app.tasks[RUN].delay(run_id)
    _wait(lambda: recon.scalar("SELECT status FROM recon_runs WHERE id = :r", r=run_id) == "completed",
          "the restarted run")
    assert recon.scalar("SELECT attempts FROM recon_runs WHERE id = :r", r=run_id) == 2
    resumed, uninterrupted = _picture(recon, run_id), _picture(reference, reference_run)
    assert resumed == uninterrupted
    assert resumed["entries_for_chunks"] is True
    assert resumed["outcomes"]["matched"] > count * 0.9
