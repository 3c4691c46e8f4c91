"""Background work of the simulator: a timer thread, and notification delivery.

The gateway POSTs each notification to its ``backUrl`` and repeats it until the
merchant answers HTTP 200. UnionPay spreads its retries over hours; the simulator
keeps the doubling schedule but compresses it (by default 0.05 s, 0.1 s, 0.2 s...).
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

import httpx

_log = logging.getLogger(__name__)
_FORM = {"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"}


class Timer:
    """Runs callables at their due time on one daemon thread."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._running = False

    def start(self) -> None:
        with self._wake:
            if self._running:
                return
            self._running = True
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._running = False
            self._queue.clear()
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def call_later(self, delay: float, action: Callable[[], None]) -> None:  # float-ok: seconds
        with self._wake:
            if not self._running:
                return
            heapq.heappush(self._queue, (time.monotonic() + delay, next(self._order), action))
            self._wake.notify_all()

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._running and (not self._queue or self._queue[0][0] > time.monotonic()):
                    timeout = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._wake.wait(timeout)
                if not self._running:
                    return
                _, _, action = heapq.heappop(self._queue)
            try:
                action()
            except Exception:  # noqa: BLE001 - one failing job must not stop the jobs after it
                _log.exception("simulator job failed")


@dataclasses.dataclass
class Delivery:
    """One notification and what became of it (for tests and the demo)."""

    url: str
    body: bytes
    attempts: int = 0
    statuses: list[int] = dataclasses.field(default_factory=list)
    delivered: bool = False


class Notifier:
    """Delivers notifications on the timer thread, retrying until HTTP 200 or
    ``attempts`` tries; the wait doubles from ``first_delay`` seconds."""

    def __init__(self, timer: Timer, *, attempts: int,
                 first_delay: float, timeout: float = 2.0) -> None:  # float-ok: seconds
        self._timer = timer
        self._attempts = attempts
        self._first_delay = first_delay
        self._timeout = timeout
        self._lock = threading.Lock()
        self.deliveries: list[Delivery] = []

    def send(self, url: str, body: bytes) -> Delivery:
        delivery = Delivery(url, body)
        with self._lock:
            self.deliveries.append(delivery)
        self._timer.call_later(0, lambda: self._attempt(delivery))
        return delivery

    def _attempt(self, delivery: Delivery) -> None:
        try:
            with httpx.Client(timeout=self._timeout) as client:
                status = client.post(delivery.url, content=delivery.body, headers=_FORM).status_code
        except httpx.HTTPError:
            status = 0          # unreachable: as good as a refusal, try again later
        with self._lock:
            delivery.attempts += 1
            delivery.statuses.append(status)
            delivery.delivered = status == 200
            again = not delivery.delivered and delivery.attempts < self._attempts
            delay = self._first_delay * 2 ** (delivery.attempts - 1)
        if again:
            self._timer.call_later(delay, lambda: self._attempt(delivery))
