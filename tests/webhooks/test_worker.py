"""A real Celery worker process, with Redis as the broker, delivers and retries."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from settlement.webhooks import verify_signature
from tests.broker import own_queue, sending_app
from tests.conftest import Database
from tests.webhooks.conftest import Receiver
from tests.webhooks.factories import attempts, captured, deliveries, emit_committed, endpoint

BROKER = os.environ.get("SETTLEMENT_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def queue() -> Iterator[str]:
    yield from own_queue(BROKER, "settlement-test")


@pytest.fixture
def broker_app(monkeypatch: pytest.MonkeyPatch, queue: str) -> Iterator[Celery]:
    yield from sending_app(monkeypatch, BROKER, queue)


@pytest.fixture
def worker(db: Database, queue: str, tmp_path: Path, broker_app: Celery) -> Iterator[Path]:
    """``celery -A settlement.tasks worker`` on the test database; yields its log file."""
    log = tmp_path / "worker.log"
    env = {**os.environ, "SETTLEMENT_DATABASE_URL": db.url, "SETTLEMENT_BROKER_URL": BROKER,
           "SETTLEMENT_WEBHOOK_RETRY_SCHEDULE": "[1]", "SETTLEMENT_WEBHOOK_MAX_ATTEMPTS": "5"}
    celery = Path(sys.executable).with_name("celery")
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(celery), "-A", "settlement.tasks", "worker", "-Q", queue, "--pool=solo", "--loglevel=INFO",
             "--without-heartbeat", "--without-gossip", "--without-mingle"],
            cwd=PROJECT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        yield log
    finally:
        process.send_signal(signal.SIGQUIT)  # cold shutdown: nothing is in flight by now
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_worker_delivers_over_redis_and_retries_until_the_receiver_accepts(
        db: Database, receiver: Receiver, worker: Path) -> None:
    receiver.fail_first(500, 502)
    _, secret = endpoint(db.factory, receiver.url)
    emit_committed(db.factory, "payment.captured", captured(3), "payment:3:captured")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        [delivery] = deliveries(db.factory)
        if delivery.status != "pending":
            break
        time.sleep(0.2)
    assert delivery.status == "delivered", worker.read_text()
    assert [(a.attempt, a.status_code) for a in attempts(db.factory, delivery.id)] == [(1, 500), (2, 502), (3, 200)]
    requests = receiver.wait_for(3)
    for request in requests:
        verify_signature(secret, request.headers["Settlement-Timestamp"], request.body,
                         request.headers["Settlement-Signature"])
    # The first message and two retries, each sent back to this queue with an ETA.
    assert len(re.findall(r"Task settlement\.webhooks\.deliver\[[-0-9a-f]+\] received", worker.read_text())) == 3
