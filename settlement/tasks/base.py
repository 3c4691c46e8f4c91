"""The task base class and after-commit dispatch.

Tasks take ids, not rows, and reload what they need inside their own unit of work
(``self.unit_of_work()``); they must be safe to run twice, because a worker that
dies mid-task has its task delivered again.

A task sent while a transaction is open must not run before that transaction's
rows are visible (or at all, if it rolls back): :func:`send_after_commit` queues it
on the session and sends it only once the session commits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import Task
from sqlalchemy import event
from sqlalchemy.orm import Session

from settlement.config import get_settings
from settlement.db import SessionFactory, make_session_factory, unit_of_work

_factory: SessionFactory | None = None
log = logging.getLogger("settlement.tasks")


def use_session_factory(factory: SessionFactory | None) -> None:
    """Make tasks in this process use ``factory`` (the API and CLI share theirs, so
    inline tasks see the same database); None resets to the settings' database."""
    global _factory  # noqa: PLW0603 - one factory per process, set by whoever starts it
    _factory = factory


def task_session_factory() -> SessionFactory:
    global _factory  # noqa: PLW0603 - built once per worker process
    if _factory is None:
        settings = get_settings()
        _factory = make_session_factory(settings.engine())
    return _factory


class DatabaseTask(Task):  # type: ignore[misc]
    """Base class of every task that touches the database."""

    abstract = True

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        with unit_of_work(task_session_factory()) as session:
            yield session


_PENDING = "settlement.after_commit_tasks"


def send_after_commit(session: Session, task: Task, *args: Any, **kwargs: Any) -> None:
    """Send ``task.delay(*args, **kwargs)`` once ``session`` commits; drop it on rollback."""
    pending: list[tuple[Task, tuple[Any, ...], dict[str, Any]]] = session.info.setdefault(_PENDING, [])
    if not pending and not session.info.get(_PENDING + ".hooked"):
        event.listen(session, "after_commit", _send_pending)
        event.listen(session, "after_soft_rollback", _drop_pending)
        session.info[_PENDING + ".hooked"] = True
    pending.append((task, args, kwargs))


def _send_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, [])
    for task, args, kwargs in pending:
        try:
            task.delay(*args, **kwargs)
        except Exception:
            # The transaction is already committed: raising here would turn a saved
            # operation into an error for the caller. Work sent this way is recorded
            # in the database before it is sent (a delivery, a run, an export job), so
            # an outage leaves it visible and retryable: webhook deliveries, payments
            # and reconciliation runs have sweepers on the beat schedule.
            log.exception("could not send task %s after commit; the work stays recorded", task.name)


def _drop_pending(session: Session, _previous_transaction: Any) -> None:
    session.info.pop(_PENDING, None)
