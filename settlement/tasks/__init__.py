"""Celery: the app, the task base class, the beat schedule.

Domain tasks live in their domain (``settlement/<domain>/tasks.py``) and are listed
in :data:`settlement.tasks.app.TASK_MODULES`. ``celery -A settlement.tasks worker``
finds the app through this module's lazy ``app`` attribute; it is built from
:class:`~settlement.config.Settings` on first use, not at import time.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("app", "celery"):
        from settlement.tasks.app import get_celery

        return get_celery()
    raise AttributeError(name)
