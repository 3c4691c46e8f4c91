"""The webhooks API: endpoint management (admin), the logs (admin, auditor), replay,
scopes and bad input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from settlement.webhooks import verify_signature
from settlement.webhooks.models import WebhookEndpoint
from tests.api.conftest import bearer
from tests.conftest import Database
from tests.webhooks.conftest import Receiver
from tests.webhooks.factories import captured, count, emit_committed

BASE = "/v1/webhooks"


@pytest.fixture
def admin(make_key: Callable[..., str]) -> dict[str, str]:
    return bearer(make_key("admin"))


def create(client: TestClient, headers: dict[str, str], url: str, types: list[str] | None = None) -> dict[str, Any]:
    response = client.post(f"{BASE}/endpoints", json={"url": url, "event_types": types or ["payment.*"]},
                           headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_an_admin_creates_lists_rotates_and_disables_endpoints(client: TestClient, admin: dict[str, str],
                                                               receiver: Receiver) -> None:
    created = create(client, admin, receiver.url, ["payment.*", "refund.succeeded"])
    assert created["secret"].startswith("whsec_")
    assert created["active"] is True
    assert created["event_types"] == ["payment.*", "refund.succeeded"]
    shown = client.get(f"{BASE}/endpoints/{created['id']}", headers=admin).json()
    assert "secret" not in shown
    assert shown["url"] == receiver.url
    assert "secret" not in client.get(f"{BASE}/endpoints", headers=admin).json()["data"][0]

    rotated = client.post(f"{BASE}/endpoints/{created['id']}/rotate-secret", headers=admin).json()
    assert rotated["secret"] != created["secret"]
    assert rotated["previous_secret_expires_at"] is not None
    retired = client.post(f"{BASE}/endpoints/{created['id']}/rotate-secret", json={"keep_previous_seconds": 0},
                          headers=admin).json()
    assert retired["previous_secret_expires_at"] is None

    disabled = client.post(f"{BASE}/endpoints/{created['id']}/disable", headers=admin)
    assert disabled.status_code == 200
    assert disabled.json()["active"] is False
    assert disabled.json()["disabled_at"] is not None
    refused = client.post(f"{BASE}/endpoints/{created['id']}/rotate-secret", headers=admin)
    assert refused.status_code == 409
    assert refused.json()["type"] == "/problems/webhook_endpoint_disabled"
    other = create(client, admin, receiver.url + "/2")
    assert [e["id"] for e in client.get(f"{BASE}/endpoints?active=true", headers=admin).json()["data"]] == [other["id"]]
    page = client.get(f"{BASE}/endpoints?limit=1", headers=admin).json()
    assert [e["id"] for e in page["data"]] == [other["id"]]
    rest = client.get(f"{BASE}/endpoints?limit=1&cursor={page['next_cursor']}", headers=admin).json()
    assert [e["id"] for e in rest["data"]] == [created["id"]]
    assert rest["next_cursor"] is None


def test_events_deliveries_and_replay(client: TestClient, admin: dict[str, str], receiver: Receiver,
                                      pg_database: Database) -> None:
    receiver.fail_first(500)
    created = create(client, admin, receiver.url)
    emit_committed(pg_database.factory, "payment.captured", captured(1), "payment:1:captured")
    emit_committed(pg_database.factory, "payment.voided", {"payment_id": "pay_2"}, "payment:2:voided")
    events = client.get(f"{BASE}/events", headers=admin).json()["data"]
    assert [e["type"] for e in events] == ["payment.voided", "payment.captured"]
    captured_event = events[1]
    assert captured_event["data"] == captured(1)
    assert captured_event["key"] == "payment:1:captured"
    only = client.get(f"{BASE}/events", params={"type": "payment.captured"}, headers=admin).json()["data"]
    assert [e["id"] for e in only] == [captured_event["id"]]
    assert client.get(f"{BASE}/events/{captured_event['id']}", headers=admin).json() == captured_event

    log = client.get(f"{BASE}/endpoints/{created['id']}/deliveries", headers=admin).json()["data"]
    assert [(d["event_type"], d["status"], d["attempts"]) for d in log] == [
        ("payment.voided", "delivered", 1), ("payment.captured", "pending", 1)]
    failed = log[1]["log"]
    assert [(a["attempt"], a["status_code"], a["error"]) for a in failed] == [(1, 500, "HTTP 500")]
    assert failed[0]["duration_ms"] is not None
    assert failed[0]["next_attempt_at"] is not None
    pending = client.get(f"{BASE}/endpoints/{created['id']}/deliveries", params={"status": "pending"},
                         headers=admin).json()["data"]
    assert [d["event_id"] for d in pending] == [captured_event["id"]]

    replayed = client.post(f"{BASE}/endpoints/{created['id']}/replay", json={"event_id": captured_event["id"]},
                           headers=admin)
    assert replayed.status_code == 202
    assert replayed.json()["replay"] is True
    request = receiver.wait_for(3)[2]
    assert request.headers["Settlement-Event-Id"] == captured_event["id"]
    verify_signature(created["secret"], request.headers["Settlement-Timestamp"], request.body,
                     request.headers["Settlement-Signature"])
    log = client.get(f"{BASE}/endpoints/{created['id']}/deliveries", headers=admin).json()["data"]
    assert next((d["replay"], d["status"]) for d in log) == (True, "delivered")
    first = client.get(f"{BASE}/endpoints/{created['id']}/deliveries", params={"limit": 2}, headers=admin).json()
    second = client.get(f"{BASE}/endpoints/{created['id']}/deliveries",
                        params={"limit": 2, "cursor": first["next_cursor"]}, headers=admin).json()
    assert len(first["data"]) == 2
    assert len(second["data"]) == 1
    assert second["next_cursor"] is None


MANAGEMENT = [
    ("POST", f"{BASE}/endpoints", {"url": "http://127.0.0.1:9/x", "event_types": ["*"]}),
    ("GET", f"{BASE}/endpoints", None),
    ("GET", f"{BASE}/endpoints/{{id}}", None),
    ("POST", f"{BASE}/endpoints/{{id}}/rotate-secret", None),
    ("POST", f"{BASE}/endpoints/{{id}}/replay", {"event_id": "{event}"}),
    ("POST", f"{BASE}/endpoints/{{id}}/disable", None),  # last: the admin's pass disables it for real
]
LOGS = [
    ("GET", f"{BASE}/endpoints/{{id}}/deliveries", None),
    ("GET", f"{BASE}/events", None),
    ("GET", f"{BASE}/events/{{event}}", None),
]


def _call(client: TestClient, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str],
          endpoint_id: int, event_id: str) -> int:
    url = path.format(id=endpoint_id, event=event_id)
    payload = {k: (v.format(event=event_id) if isinstance(v, str) else v) for k, v in (body or {}).items()}
    return client.request(method, url, json=payload if body else None, headers=headers).status_code


def test_scopes_admin_manages_auditor_reads_logs_others_are_refused(
        client: TestClient, admin: dict[str, str], make_key: Callable[..., str], receiver: Receiver,
        pg_database: Database) -> None:
    endpoint_id = create(client, admin, receiver.url)["id"]
    emit_committed(pg_database.factory, "payment.captured", captured(), "c-1")
    event_id = client.get(f"{BASE}/events", headers=admin).json()["data"][0]["id"]
    before = count(pg_database.factory, WebhookEndpoint)
    for scope in ("checkout", "finance", "auditor"):
        headers = bearer(make_key(scope))
        for method, path, body in MANAGEMENT:
            status = _call(client, method, path, body, headers, endpoint_id, event_id)
            assert status == 403, (scope, method, path, status)
        for method, path, body in LOGS:
            status = _call(client, method, path, body, headers, endpoint_id, event_id)
            assert status == (200 if scope == "auditor" else 403), (scope, method, path, status)
    for method, path, body in MANAGEMENT + LOGS:
        assert _call(client, method, path, body, {}, endpoint_id, event_id) == 401
    assert count(pg_database.factory, WebhookEndpoint) == before
    for method, path, body in LOGS + MANAGEMENT:
        status = _call(client, method, path, body, admin, endpoint_id, event_id)
        assert status in (200, 201, 202), (method, path, status)


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), [
    ("POST", "/endpoints", {"url": "ftp://example.com/x", "event_types": ["*"]}, 422, "invalid_endpoint_url"),
    ("POST", "/endpoints", {"url": "/relative", "event_types": ["*"]}, 422, "invalid_endpoint_url"),
    ("POST", "/endpoints", {"url": "http://exa mple.com", "event_types": ["*"]}, 422, "invalid_endpoint_url"),
    ("POST", "/endpoints", {"url": "https://example.com/h", "event_types": ["invoice.*"]}, 422, "invalid_event_type"),
    ("POST", "/endpoints", {"url": "https://example.com/h", "event_types": []}, 422, "validation_error"),
    ("POST", "/endpoints", {"url": "https://example.com/h", "event_types": ["*"], "secret": "mine"}, 422,
     "unknown_field"),
    ("POST", "/endpoints", "{not json", 400, "malformed_json"),
    ("GET", "/endpoints/999", None, 404, "webhook_endpoint_not_found"),
    ("GET", "/endpoints/0", None, 422, "validation_error"),
    ("GET", "/endpoints/99999999999999999999", None, 422, "validation_error"),
    ("GET", "/endpoints?cursor=%%%", None, 422, "invalid_webhook_cursor"),
    ("GET", "/events?cursor=OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk", None, 422, "invalid_webhook_cursor"),
    ("GET", "/events/evt_missing", None, 422, "validation_error"),
    ("GET", f"/events/evt_{'0' * 32}", None, 404, "webhook_event_not_found"),
    ("GET", "/events?type=payment.%00", None, 422, "validation_error"),
    ("POST", "/endpoints/{id}/replay", {"event_id": f"evt_{'0' * 32}"}, 404, "webhook_event_not_found"),
    ("POST", "/endpoints/{id}/replay", {"event_id": "evt_\u0000"}, 422, "validation_error"),
    ("POST", "/endpoints", {"url": "https://example.com/h", "event_types": ["*"], "description": "a\u0000b"}, 422,
     "validation_error"),
    ("POST", "/endpoints", {"url": "https://example.com/\u0000", "event_types": ["*"]}, 422, "invalid_endpoint_url"),
    ("POST", "/endpoints/{id}/rotate-secret", {"keep_previous_seconds": -1}, 422, "validation_error"),
    ("POST", "/endpoints/{id}/rotate-secret", {"keep_previous_seconds": 10**9}, 422, "validation_error"),
])
def test_bad_input_is_a_precise_problem_and_changes_nothing(
        client: TestClient, admin: dict[str, str], pg_database: Database, method: str, path: str,
        body: dict[str, Any] | str | None, status: int, code: str) -> None:
    endpoint_id = create(client, admin, "https://example.com/existing")["id"]
    url = BASE + path.replace("{id}", str(endpoint_id))
    if isinstance(body, str):
        response = client.request(method, url, content=body, headers={**admin, "Content-Type": "application/json"})
    else:
        response = client.request(method, url, json=body, headers=admin)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == f"/problems/{code}"
    assert count(pg_database.factory, WebhookEndpoint) == 1
    shown = client.get(f"{BASE}/endpoints/{endpoint_id}", headers=admin).json()
    assert shown["previous_secret_expires_at"] is None
    assert shown["active"] is True
