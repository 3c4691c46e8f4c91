"""Export tasks: run an export job asked for over the API."""

from __future__ import annotations

from celery import shared_task

from settlement.config import get_settings
from settlement.exports.jobs import run_job
from settlement.tasks.base import DatabaseTask, task_session_factory


@shared_task(base=DatabaseTask, bind=True, name="settlement.exports.run")
def run_export(self: DatabaseTask, export_id: int) -> str:
    """Write the export's files and archive; safe to deliver twice (the job is
    claimed once). Returns the job's final status."""
    return run_job(task_session_factory(), get_settings(), export_id)
