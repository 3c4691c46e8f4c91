"""Console actions over HTTP, each test on freshly seeded data: forms without their
token, bad action input (sentences beside the fields, never a stack trace),
maker-checker, forms sent twice, manual match and assignment, exports; and amounts."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from settlement.console.rendering import money
from tests.conftest import Database
from tests.console.helpers import TRACEBACK, balance, csrf_of, sign_in, state
from tests.console.seed import AMOUNTS, Seeded

pytestmark = pytest.mark.postgres
def test_money_keeps_each_currency_s_decimals() -> None:
    assert money(123_456, "RUB") == "1,234.56 RUB"
    assert money(-5, "CNY") == "-0.05 CNY"
    assert money(0, "RUB") == "0.00 RUB"
    assert money(1_234, "JPY") == "1,234 JPY"
    assert money(1_234_567, "KWD") == "1,234.567 KWD"
    assert money(None, "RUB") == "-"



def test_a_form_without_the_session_token_changes_nothing(client: TestClient, seeded: Seeded,
                                                          make_key: Callable[..., str], pg_database: Database) -> None:
    sign_in(client, make_key("finance"))
    target = seeded.small_mismatch
    for token in ({}, {"csrf_token": "forged"}):
        refused = client.post(f"/console/exceptions/{target}/resolve",
                              data={**token, "action": "ignore", "reason": "sneaky"})
        assert refused.status_code == 403
        assert "Reload the page and try again" in refused.text
    assert state(pg_database.factory, target) == ("open", ["opened"])


def test_bad_action_input_is_explained_beside_the_field(client: TestClient, seeded: Seeded,
                                                        make_key: Callable[..., str], pg_database: Database) -> None:
    token = sign_in(client, make_key("finance"))
    unexpected = seeded.exception("unexpected_in_file")
    no_reason = client.post(f"/console/exceptions/{unexpected}/resolve",
                            data={"csrf_token": token, "action": "ignore", "reason": "   "})
    assert no_reason.status_code == 422
    assert 'id="ignore-reason-error">Reason is required.' in no_reason.text
    assert 'aria-describedby="ignore-reason-error"' in no_reason.text
    unknown = client.post(f"/console/exceptions/{unexpected}/resolve",
                          data={"csrf_token": token, "action": "manual_match", "reason": "it is that one",
                                "counterpart": "expectation_id:999999"})
    assert unknown.status_code == 404
    assert "There is no expectation 999999." in unknown.text
    wrong = client.post(f"/console/exceptions/{unexpected}/resolve",
                        data={"csrf_token": token, "action": "merge", "reason": "r", "counterpart": "x:y"})
    assert wrong.status_code == 422
    assert "Action must be one of: manual_match, write_off, ignore" in wrong.text
    for response in (no_reason, unknown, wrong):
        assert not TRACEBACK.search(response.text)
    assert state(pg_database.factory, unexpected) == ("open", ["opened"])


def test_write_off_above_the_threshold_needs_a_second_finance_user(client: TestClient, seeded: Seeded,
                                                                   make_key: Callable[..., str],
                                                                   pg_database: Database) -> None:
    alice, bob = make_key("finance", name="alice"), make_key("finance", name="bob")
    token = sign_in(client, alice)
    target = seeded.large_mismatch
    asked = client.post(f"/console/exceptions/{target}/resolve",
                        data={"csrf_token": token, "action": "write_off", "reason": "not worth chasing"})
    assert asked.headers["location"] == f"/console/exceptions/{target}?notice=write_off_requested"
    assert balance(pg_database.factory, "recon:writeoff:RUB") == 0
    own = client.post(f"/console/exceptions/{target}/approve", data={"csrf_token": token, "reason": "mine"})
    assert own.status_code == 403
    assert "You asked for this write-off, so another finance user has to approve or reject it." in own.text
    assert "Approve and book the write-off" not in client.get(f"/console/exceptions/{target}").text
    assert state(pg_database.factory, target)[0] == "pending_approval"

    client.cookies.clear()
    token = sign_in(client, bob)
    assert "Approve and book the write-off" in client.get(f"/console/exceptions/{target}").text
    approved = client.post(f"/console/exceptions/{target}/approve", data={"csrf_token": token, "reason": "checked"})
    assert approved.status_code == 303
    assert state(pg_database.factory, target) == ("resolved", ["opened", "write_off_requested", "write_off_approved"])
    # The rail paid 150.00 RUB less than sale 4 (4,800.00 RUB): that is what was written off.
    assert balance(pg_database.factory, "recon:writeoff:RUB") == 15_000
    page = client.get(f"/console/exceptions/{target}?notice=approved").text
    assert "The write-off was approved and booked." in page
    assert "4,800.00 RUB" in page


def test_a_form_sent_twice_acts_once(client: TestClient, seeded: Seeded, make_key: Callable[..., str],
                                     pg_database: Database) -> None:
    token = sign_in(client, make_key("finance"))
    target = seeded.exception("duplicate")
    page = client.get(f"/console/exceptions/{target}").text
    key = re.search(r'name="idempotency_key" value="(console:[0-9a-f]{32})"', page)
    assert key is not None
    form = {"csrf_token": token, "action": "ignore", "reason": "the rail listed it twice",
            "idempotency_key": key.group(1)}
    first = client.post(f"/console/exceptions/{target}/resolve", data=form)
    second = client.post(f"/console/exceptions/{target}/resolve", data=form)
    assert first.headers["location"] == second.headers["location"]
    assert state(pg_database.factory, target) == ("resolved", ["opened", "ignore"])
    third = client.post(f"/console/exceptions/{target}/resolve", data={**form, "idempotency_key": ""})
    assert third.status_code == 409
    assert "This exception is resolved and takes no such action now." in third.text


def test_manual_match_and_assignment(client: TestClient, seeded: Seeded, make_key: Callable[..., str],
                                     pg_database: Database) -> None:
    token = sign_in(client, make_key("finance", name="alice"))
    missing = seeded.exception("missing_in_file")
    assigned = client.post(f"/console/exceptions/{missing}/assign", data={"csrf_token": token, "assignee": "alice"})
    assert assigned.status_code == 303
    listed = client.get("/console/exceptions?assignee=alice").text
    assert f"Exception {missing}<" in listed
    assert "1 exception," in listed
    page = client.get(f"/console/exceptions/{missing}").text
    candidate = re.search(r'<option value="(item_id:\d+)"', page)
    assert candidate is not None
    before = balance(pg_database.factory, "bank:clearing:RUB")
    matched = client.post(f"/console/exceptions/{missing}/resolve",
                          data={"csrf_token": token, "action": "manual_match", "reason": "same sale",
                                "counterpart": candidate.group(1)})
    assert matched.headers["location"].endswith("notice=resolved_manual_match")
    assert state(pg_database.factory, missing) == ("resolved", ["opened", "assign", "manual_match"])
    assert state(pg_database.factory, seeded.exception("unexpected_in_file"))[0] == "resolved"
    # What the rail paid for the unknown record (999.00 RUB, no fee) reaches bank clearing.
    assert balance(pg_database.factory, "bank:clearing:RUB") - before == AMOUNTS[2]





def test_exports_start_verify_and_download(client: TestClient, seeded: Seeded, make_key: Callable[..., str]) -> None:
    token = sign_in(client, make_key("auditor"))
    bad = client.post("/console/exports", data={"csrf_token": token, "format": "pdf", "period_from": "2026-02-30"})
    assert bad.status_code == 422
    assert "Format must be one of: csv, jsonl, xml" in bad.text
    assert "From must be a date written as YYYY-MM-DD" in bad.text
    started = client.post("/console/exports", data={"csrf_token": token, "format": "jsonl"})
    assert started.status_code == 303
    page = client.get(started.headers["location"]).text
    assert "The export was started." in page
    assert "Verified: the manifest's signature" in page
    export_id = started.headers["location"].split("/")[-1].split("?")[0]
    archive = client.get(f"/console/exports/{export_id}/archive")
    assert archive.headers["content-type"] == "application/zip"
    assert archive.content[:2] == b"PK"
    key = client.get("/console/exports/public-key.pem")
    assert key.text.startswith("-----BEGIN PUBLIC KEY-----")
    assert csrf_of(client.get("/console/exports").text) == token
