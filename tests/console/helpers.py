"""Helpers of the console's HTTP tests: signing a TestClient in, the form token of a
page, an exception's state and an account's balance read through the services."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from settlement.db import SessionFactory
from settlement.ledger import Ledger
from settlement.reconciliation.service import queue

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "the page has no form token"
    return found.group(1)


def sign_in(client: TestClient, key: str) -> str:
    """Sign ``client`` in with ``key``; returns the session's form token."""
    page = client.get("/console/sign-in")
    response = client.post("/console/sign-in", data={"api_key": key, "csrf_token": csrf_of(page.text),
                                                     "next": "/console/"})
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/console/").text)


TRACEBACK = re.compile(r"Traceback|File \"/|sqlalchemy\.|psycopg")


def state(factory: SessionFactory, exception_id: int) -> tuple[str, list[str]]:
    """The exception's status and its actions."""
    with factory() as session:
        exception = queue.get_exception(session, exception_id)
        return exception.status, [a.action for a in queue.actions(session, exception_id)]


def balance(factory: SessionFactory, code: str) -> int:
    """The account's balance (0 for an account not created yet)."""
    with factory() as session:
        found = Ledger(session).list_accounts(code_prefix=code).items
        return Ledger(session).balance(code).balance if any(a.code == code for a in found) else 0
