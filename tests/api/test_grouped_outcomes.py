"""Concurrent sales through HTTP whose outcomes share transactions (PostgreSQL): each
answered once, replayed byte for byte, booked once."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from settlement.payments.service import groups
from tests.api.payflow import CARDS, ledger_counts, merchant, net
from tests.conftest import Database

SALES = 12


def test_concurrent_sales_recorded_in_groups_answer_and_replay_once(
        app: FastAPI, pay: TestClient, checkout: dict[str, str], pg_database: Database,
        monkeypatch: pytest.MonkeyPatch) -> None:
    size = app.state.settings.outcome_group_size
    assert size > 1
    grouper = groups._groupers[app.state.factory] = groups.Grouper(app.state.factory, size)
    release, first = threading.Event(), threading.Event()
    write = groups.Grouper._write

    def held_first(self: groups.Grouper, group: list[groups.Member]) -> None:
        # The first group waits until every other sale waits for the next one.
        if not first.is_set():
            first.set()
            release.wait(30)
        write(self, group)

    monkeypatch.setattr(groups.Grouper, "_write", held_first)
    seller = merchant(pay, checkout, "RUB")
    body = {"amount": "123.45", "currency": "RUB", "merchant_id": seller, "rail": "mir",
            "payment_method": CARDS["mir"]}
    keys = [uuid.uuid4().hex for _ in range(SALES)]

    def release_when_all_wait() -> None:
        deadline = time.monotonic() + 30
        while len(grouper._waiting) < SALES - 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        release.set()

    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return list(await asyncio.gather(*(
                client.post("/v1/payments", json=body, headers={**checkout, "Idempotency-Key": key})
                for key in keys)))

    releaser = threading.Thread(target=release_when_all_wait)
    releaser.start()
    responses = asyncio.run(burst())
    releaser.join()
    assert [r.status_code for r in responses] == [201] * SALES, [r.text for r in responses]
    assert all(r.json()["state"] == "captured" for r in responses)
    assert len({r.json()["id"] for r in responses}) == SALES
    assert (grouper.committed, grouper.largest, grouper.failed) == (2, SALES - 1, 0)
    entries, _postings, _holds = ledger_counts(pg_database.factory)
    assert entries == 2 * SALES
    # 123.45 RUB less 5 % (6.1725, rounded down to 6.17) to the seller, each sale once.
    assert net(pg_database.factory)[f"merchant:{seller}:payable:RUB"] == SALES * (12345 - 617)
    for key, response in zip(keys, responses, strict=True):
        again = pay.post("/v1/payments", json=body, headers={**checkout, "Idempotency-Key": key})
        assert again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.content == response.content
    assert ledger_counts(pg_database.factory)[0] == 2 * SALES
