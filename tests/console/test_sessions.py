"""Console sessions over HTTP: sign-in with a finance or auditor key (never a checkout
key), the cookie, CSRF on every form, sign-out, expiry, idle timeout, revoked keys."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from settlement.auth.service import revoke_key
from settlement.config import Settings
from settlement.console import service
from settlement.console.errors import NotSignedIn, SignInRefused
from settlement.console.models import ConsoleSession
from settlement.db import unit_of_work
from tests.conftest import Database
from tests.console.helpers import csrf_of, sign_in

pytestmark = pytest.mark.postgres


def sessions(db: Database) -> list[ConsoleSession]:
    with db.factory() as session:
        return list(session.execute(select(ConsoleSession).order_by(ConsoleSession.id)).scalars())


def test_pages_need_a_session(client: TestClient) -> None:
    response = client.get("/console/exceptions?status=open")
    assert response.status_code == 303
    assert response.headers["location"] == ("/console/sign-in?next=%2Fconsole%2Fexceptions%3Fstatus%3Dopen"
                                            "&reason=no_session")


def test_sign_in_makes_a_server_side_session_in_a_strict_cookie(client: TestClient, make_key: Callable[..., str],
                                                                 pg_database: Database) -> None:
    key = make_key("finance", name="alice")
    page = client.get("/console/sign-in?next=/console/exceptions")
    assert "SameSite=strict" in page.headers["set-cookie"]
    response = client.post("/console/sign-in", data={"api_key": key, "csrf_token": csrf_of(page.text),
                                                     "next": "/console/exceptions"})
    assert response.status_code == 303
    assert response.headers["location"] == "/console/exceptions"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("settlement_console="))
    token = cookie.split(";")[0].split("=", 1)[1]
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/console", "Max-Age=28800"):
        assert attribute in cookie
    (row,) = sessions(pg_database)
    assert row.token_digest == hashlib.sha256(token.encode()).hexdigest()
    assert token not in (row.token_digest, row.csrf_token)
    assert row.expires_at - row.created_at == dt.timedelta(hours=8)
    home = client.get("/console/")
    assert home.status_code == 200
    assert "Signed in as <strong>alice</strong>" in home.text


@pytest.mark.parametrize(("scopes", "status", "sentence"), [
    (("checkout",), 403, "This key cannot sign in to the console: it needs the finance or the auditor scope"),
    (None, 401, "That API key is unknown or was revoked."),
])
def test_keys_that_cannot_sign_in(client: TestClient, make_key: Callable[..., str], pg_database: Database,
                                  scopes: tuple[str, ...] | None, status: int, sentence: str) -> None:
    key = make_key(*scopes) if scopes else "sk_" + "x" * 43
    page = client.get("/console/sign-in")
    response = client.post("/console/sign-in", data={"api_key": key, "csrf_token": csrf_of(page.text)})
    assert response.status_code == status
    assert sentence in response.text
    assert "settlement_console=" not in response.headers.get("set-cookie", "")
    assert sessions(pg_database) == []


def test_auditor_and_admin_keys_sign_in(client: TestClient, make_key: Callable[..., str]) -> None:
    sign_in(client, make_key("auditor", name="carol"))
    assert "auditor, read-only" in client.get("/console/").text
    client.cookies.clear()
    sign_in(client, make_key("admin", name="root"))
    assert "admin" in client.get("/console/").text


def test_sign_in_form_needs_its_token_and_a_key(client: TestClient, make_key: Callable[..., str],
                                                pg_database: Database) -> None:
    key = make_key("finance")
    forged = client.post("/console/sign-in", data={"api_key": key, "csrf_token": "guess"})
    assert forged.status_code == 403
    assert "This form was not sent from this console page" in forged.text
    page = client.get("/console/sign-in")
    other_site = client.post("/console/sign-in", data={"api_key": key, "csrf_token": csrf_of(page.text)},
                             headers={"Origin": "https://evil.example"})
    assert other_site.status_code == 403
    page = client.get("/console/sign-in")
    empty = client.post("/console/sign-in", data={"api_key": "  ", "csrf_token": csrf_of(page.text)})
    assert empty.status_code == 422
    assert "Enter your API key" in empty.text
    assert sessions(pg_database) == []


def test_sign_in_only_goes_back_to_console_pages(client: TestClient, make_key: Callable[..., str]) -> None:
    key = make_key("finance")
    for target in ("https://evil.example/", "//evil.example/console/", "/v1/ledger/accounts", "/console\\..\\x"):
        client.cookies.clear()
        page = client.get("/console/sign-in")
        response = client.post("/console/sign-in", data={"api_key": key, "csrf_token": csrf_of(page.text),
                                                         "next": target})
        assert response.headers["location"] == "/console/", target


def test_sign_out_ends_the_session(client: TestClient, make_key: Callable[..., str], pg_database: Database) -> None:
    token = sign_in(client, make_key("finance"))
    cookie = client.cookies.get("settlement_console")
    refused = client.post("/console/sign-out", data={"csrf_token": "not-it"})
    assert refused.status_code == 403
    assert client.get("/console/").status_code == 200
    response = client.post("/console/sign-out", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in?reason=signed_out"
    assert sessions(pg_database)[0].ended_at is not None
    # The old cookie, presented again, is refused.
    client.cookies.set("settlement_console", cookie or "", path="/console")
    again = client.get("/console/")
    assert again.headers["location"].endswith("reason=signed_out")
    assert "You signed out." in client.get(again.headers["location"]).text


@pytest.mark.parametrize(("column", "reason"), [("expires_at", "expired"), ("last_seen_at", "idle")])
def test_expired_and_idle_sessions_are_refused(client: TestClient, make_key: Callable[..., str],
                                               pg_database: Database, column: str, reason: str) -> None:
    sign_in(client, make_key("finance"))
    with unit_of_work(pg_database.factory) as session:
        # expires_at in the past, or the last request longer ago than the idle timeout (30 minutes).
        session.execute(text(f"UPDATE console_sessions SET created_at = now() - interval '9 hours', "
                             f"{column} = now() - interval '31 minutes'"))
    response = client.get("/console/runs/1")
    assert response.status_code == 303
    assert response.headers["location"] == f"/console/sign-in?next=%2Fconsole%2Fruns%2F1&reason={reason}"
    assert 'settlement_console=""' in response.headers["set-cookie"]
    posted = client.post("/console/sign-out", data={"csrf_token": "x"})
    assert posted.status_code == 401


def test_a_revoked_key_ends_its_sessions(client: TestClient, make_key: Callable[..., str],
                                         pg_database: Database) -> None:
    sign_in(client, make_key("finance"))
    with unit_of_work(pg_database.factory) as session:
        revoke_key(session, sessions(pg_database)[0].key_id)
    assert client.get("/console/").headers["location"].endswith("reason=revoked")


def test_session_rules_in_the_service(pg_database: Database, make_key: Callable[..., str]) -> None:
    settings = Settings(database_url=pg_database.url, console_session_seconds=3600, console_idle_seconds=600)
    start = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    with unit_of_work(pg_database.factory) as session:
        token, row = service.sign_in(session, settings, make_key("auditor", name="carol"), now=start)
    assert row.expires_at == start + dt.timedelta(hours=1)

    def look(at: dt.datetime) -> service.Viewer:
        with unit_of_work(pg_database.factory) as session:
            return service.viewer(session, settings, token, now=at)

    viewer = look(start + dt.timedelta(seconds=30))
    assert (viewer.name, viewer.can_act, viewer.role) == ("carol", False, "auditor")
    assert sessions(pg_database)[0].last_seen_at == start        # touched at most once a minute
    look(start + dt.timedelta(minutes=9))
    assert sessions(pg_database)[0].last_seen_at == start + dt.timedelta(minutes=9)
    look(start + dt.timedelta(minutes=18))                       # 9 minutes idle: still fine
    with pytest.raises(NotSignedIn) as idle:
        look(start + dt.timedelta(minutes=28, seconds=1))        # 10 minutes and a second idle
    assert idle.value.detail["reason"] == "idle"
    with pytest.raises(NotSignedIn) as expired:
        look(start + dt.timedelta(hours=1))
    assert expired.value.detail["reason"] == "expired"
    with unit_of_work(pg_database.factory) as session, pytest.raises(SignInRefused):
        service.sign_in(session, settings, make_key("checkout"), now=start)


def test_pages_carry_security_headers(client: TestClient, make_key: Callable[..., str]) -> None:
    sign_in(client, make_key("finance"))
    response = client.get("/console/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    css = client.get("/console/static/console.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert client.get("/console/static/secrets.env").status_code == 404
