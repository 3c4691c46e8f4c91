"""Delivery of the simulated gateway's asynchronous notifications, with Alipay's retries.

Alipay posts a notification to the request's ``notify_url`` and, until the answer
body is exactly ``success``, delivers it again 4m, 10m, 10m, 1h, 2h, 6h and 15h later:
8 deliveries over about 25 hours. Here the schedule is multiplied by ``time_scale``
(``0.0001`` turns 25 hours into 9 seconds and the first retry into 24 ms) so tests
see the whole behaviour quickly.

Each delivery carries the same ``notify_id`` and a fresh ``notify_time``, and is
signed anew (the signature covers the time). One daemon thread sends everything in
due order; a slow receiver delays the others, as a single Alipay worker would.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from .codec import format_time

#: Alipay's waits between deliveries of one notification, in seconds.
RETRY_SCHEDULE: tuple[int, ...] = (4 * 60, 10 * 60, 10 * 60, 3600, 2 * 3600, 6 * 3600, 15 * 3600)
MAX_DELIVERIES = len(RETRY_SCHEDULE) + 1


def envelope(params: dict[str, str], *, notify_id: str, app_id: str, sent_at: dt.datetime) -> dict[str, str]:
    """``params`` with the fields every delivery adds: the event's ``notify_id``, the
    delivery's ``notify_time``, ``app_id``, ``charset`` and ``version`` (unsigned yet)."""
    return {**params, "notify_id": notify_id, "notify_time": format_time(sent_at), "app_id": app_id,
            "charset": "utf-8", "version": "1.0"}


@dataclass(frozen=True)
class Attempt:
    """One delivery as the simulator saw it."""

    notify_id: str
    url: str
    number: int          # 1 for the first delivery
    status_code: int     # 0 when the receiver could not be reached
    body: bytes
    accepted: bool


@dataclass
class _Job:
    notify_id: str
    url: str
    params: dict[str, str]
    number: int = 0


class Deliverer:
    """Sends notifications in the background with Alipay's retry schedule."""

    def __init__(self, *, sign: Callable[[dict[str, str]], dict[str, str]], app_id: str,
                 clock: Callable[[], dt.datetime],
                 time_scale: float,  # float-ok: a time factor
                 max_deliveries: int = MAX_DELIVERIES,
                 timeout: float = 2.0) -> None:  # float-ok: seconds
        self._sign = sign
        self._app_id = app_id
        self._clock = clock
        self._scale = time_scale
        self._max = min(max_deliveries, MAX_DELIVERIES)
        self._timeout = timeout
        self._queue: list[tuple[float, int, _Job]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._attempts: list[Attempt] = []
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="alipay-sim-notify", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._queue.clear()
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=self._timeout + 1)

    def submit(self, url: str, params: dict[str, str]) -> str:
        """Queue a new event for immediate delivery; returns its ``notify_id``."""
        job = _Job(notify_id=uuid.uuid4().hex, url=url, params=dict(params))
        self._schedule(job, 0.0)
        return job.notify_id

    def attempts(self, notify_id: str | None = None) -> list[Attempt]:
        with self._cond:
            return [a for a in self._attempts if notify_id is None or a.notify_id == notify_id]

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def _schedule(self, job: _Job, delay: float) -> None:  # float-ok: seconds
        with self._cond:
            if self._stopping:
                return
            heapq.heappush(self._queue, (time.monotonic() + delay, next(self._order), job))
            self._cond.notify_all()

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout, follow_redirects=False) as http:
            while True:
                with self._cond:
                    while not self._stopping and (not self._queue or self._queue[0][0] > time.monotonic()):
                        wait = self._queue[0][0] - time.monotonic() if self._queue else None
                        self._cond.wait(timeout=wait)
                    if self._stopping:
                        return
                    _, _, job = heapq.heappop(self._queue)
                self._deliver(http, job)

    def _deliver(self, http: httpx.Client, job: _Job) -> None:
        job.number += 1
        params = envelope(job.params, notify_id=job.notify_id, app_id=self._app_id, sent_at=self._clock())
        body = urlencode(self._sign(params)).encode("ascii")
        try:
            response = http.post(job.url, content=body,
                                 headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
            status, answer = response.status_code, response.content[:1024]
        except httpx.HTTPError:
            status, answer = 0, b""
        accepted = status == 200 and answer.strip() == b"success"
        with self._cond:
            self._attempts.append(Attempt(job.notify_id, job.url, job.number, status, answer, accepted))
        if not accepted and job.number < self._max:
            self._schedule(job, RETRY_SCHEDULE[job.number - 1] * self._scale)
