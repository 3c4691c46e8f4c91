"""The daily inbox pickup, the restart of stale runs and the one-executor rule, with
the tasks run inline (no broker), on PostgreSQL and SQLite (an advisory lock there,
a file lock here); tests/reconciliation/test_worker.py runs them in real workers.
And the beat schedule that sends the periodic ones."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery.schedules import crontab
from sqlalchemy import update

from settlement.config import Settings, get_settings
from settlement.db import unit_of_work
from settlement.db.types import utcnow
from settlement.reconciliation import runner
from settlement.reconciliation.errors import RunInProgress
from settlement.reconciliation.models import Run
from settlement.reconciliation.service import runs
from settlement.reconciliation.tasks import pickup_inboxes, resume_stale_runs
from settlement.tasks.app import BEAT_SCHEDULE, TASK_MODULES, create_celery, get_celery
from settlement.tasks.base import use_session_factory
from tests.conftest import Database
from tests.reconciliation.factories import Harness, ops, statement_camt, write_file


@pytest.fixture
def inline(database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Tasks inline in this process, on the test database; yields the data folder."""
    monkeypatch.setenv("SETTLEMENT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SETTLEMENT_DATABASE_URL", database.url)
    monkeypatch.delenv("SETTLEMENT_BROKER_URL", raising=False)
    get_settings.cache_clear()
    get_celery.cache_clear()
    use_session_factory(database.factory)
    yield tmp_path / "data"
    use_session_factory(None)
    get_settings.cache_clear()
    get_celery.cache_clear()


def test_the_inbox_pickup_reconciles_each_file_once(recon: Harness, inline: Path) -> None:
    batch = ops("mir", 3)
    recon.expect(*batch)
    data = write_file("mir", [op.record() for op in batch])
    (inline / "inbox" / "mir").mkdir(parents=True)
    (inline / "inbox" / "statement").mkdir(parents=True)
    (inline / "inbox" / "mir" / "register-1.csv").write_bytes(data)
    net = sum(op.record().net for op in batch)
    (inline / "inbox" / "statement" / "camt.xml").write_bytes(statement_camt([(net, dt.date(2026, 11, 19), "E")]))
    picked = pickup_inboxes.apply().get()
    assert [(p["inbox"], p["new"]) for p in picked] == [("mir", True), ("statement", True)]
    assert sorted(p.name for p in (inline / "inbox" / "mir" / "processed").iterdir()) == ["register-1.csv"]
    assert recon.sql("SELECT kind, status FROM recon_runs ORDER BY id") == [("settlement", "completed"),
                                                                             ("statement", "completed")]
    assert recon.balance("bank:account:RUB") == net
    # The same bytes dropped again, under another name: recognised, nothing applied.
    (inline / "inbox" / "mir" / "register-1-again.csv").write_bytes(data)
    again = pickup_inboxes.apply().get()
    assert [(p["inbox"], p["new"], p["run_id"]) for p in again] == [("mir", False, picked[0]["run_id"])]
    assert recon.sql("SELECT count(*) FROM recon_runs") == [(2,)]
    assert recon.balance("bank:clearing:RUB") == 0


def test_stale_runs_are_sent_again_and_finish(recon: Harness, inline: Path) -> None:
    batch = ops("mir", 2)
    recon.expect(*batch)
    file_id, _ = recon.register(write_file("mir", [op.record() for op in batch]))
    with unit_of_work(recon.factory) as session:
        run_id = runs.create_run(session, file_id=file_id, dry_run=False, actor="cli:tester").id
    assert resume_stale_runs.apply().get() == []
    with unit_of_work(recon.factory) as session:
        session.execute(update(Run).values(created_at=utcnow() - dt.timedelta(hours=1)))
    assert resume_stale_runs.apply().get() == [run_id]
    assert recon.scalar("SELECT status FROM recon_runs WHERE id = :r", r=run_id) == "completed"


def test_one_process_executes_a_run_at_a_time(recon: Harness) -> None:
    batch = ops("mir", 1)
    recon.expect(*batch)
    file_id, _ = recon.register(write_file("mir", [batch[0].record()]))
    with unit_of_work(recon.factory) as session:
        run_id = runs.create_run(session, file_id=file_id, dry_run=False, actor="cli:tester").id
    with runner.advisory_lock(recon.factory, f"recon:run:{run_id}", wait=False), pytest.raises(RunInProgress):
        runner.execute(recon.factory, recon.settings, run_id)
    assert runner.execute(recon.factory, recon.settings, run_id)["outcomes"]["matched"] == 1


def test_the_beat_schedule_sends_the_daily_pickup_the_hold_expiry_and_the_janitor(tmp_path: Path) -> None:
    app = create_celery(Settings(database_url=f"sqlite:///{tmp_path / 'beat.db'}", data_dir=tmp_path))
    # What a worker and beat load: the app's own task modules.
    app.loader.import_default_modules()
    schedule = app.conf.beat_schedule
    assert schedule == BEAT_SCHEDULE
    unregistered = {name: entry["task"] for name, entry in schedule.items() if entry["task"] not in app.tasks}
    assert unregistered == {}
    assert {app.tasks[entry["task"]].__module__ for entry in schedule.values()} <= set(TASK_MODULES)
    by_task = {entry["task"]: entry["schedule"] for entry in schedule.values()}
    inbox = by_task["settlement.reconciliation.pickup_inboxes"]
    assert isinstance(inbox, crontab)
    # Once a day, every day: one hour, one minute, every day of every month.
    assert (len(inbox.hour), len(inbox.minute)) == (1, 1)
    assert (inbox.day_of_week, inbox.day_of_month, inbox.month_of_year) == (
        set(range(7)), set(range(1, 32)), set(range(1, 13)))
    for periodic in ("settlement.ledger.expire_holds", "settlement.payments.reconcile_in_flight",
                     "settlement.reconciliation.resume_stale_runs"):
        every = by_task[periodic]
        assert isinstance(every, dt.timedelta)
        assert dt.timedelta(0) < every <= dt.timedelta(minutes=5), periodic
