"""Shared by the tests that run a real Celery worker over Redis: a queue of the
test's own (so no other run's messages reach its worker) and this process's Celery
app sending to that broker instead of running tasks inline."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from celery import Celery

from settlement.config import get_settings
from settlement.tasks.app import get_celery


def own_queue(broker: str, prefix: str) -> Iterator[str]:
    """A new queue name; its keys are deleted from ``broker`` afterwards."""
    name = f"{prefix}-{uuid.uuid4().hex}"
    yield name
    client = redis.Redis.from_url(broker)
    client.delete(name, f"_kombu.binding.{name}", f"_kombu.binding_permanent.{name}")
    client.close()


def sending_app(monkeypatch: pytest.MonkeyPatch, broker: str, queue: str) -> Iterator[Celery]:
    """This process's Celery app, sending to ``broker`` on ``queue``."""
    monkeypatch.setenv("SETTLEMENT_BROKER_URL", broker)
    get_settings.cache_clear()
    get_celery.cache_clear()
    app = get_celery()
    app.conf.task_default_queue = queue
    yield app
    app.close()
    get_settings.cache_clear()
    get_celery.cache_clear()
