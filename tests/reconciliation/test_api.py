"""Reconciliation over HTTP: finance uploads, runs, reads results and reports, and
works the exceptions queue; the auditor reads and cannot act; maker-checker between
two finance keys."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from settlement.db import SessionFactory
from tests.api.conftest import bearer
from tests.reconciliation.factories import DAY, Harness, Op, ops, settings_for, write_file


def _upload(client: TestClient, headers: dict[str, str], data: bytes, name: str = "mir.csv",
            rail: str = "mir") -> Any:
    return client.post("/v1/reconciliation/files", headers=headers, data={"kind": "settlement", "rail": rail},
                       files={"file": (name, data, "text/csv")})


def _harness(factory: SessionFactory, client: TestClient) -> Harness:
    app_settings = client.app.state.settings  # type: ignore[attr-defined]
    return Harness(factory, settings_for(app_settings.database_url, app_settings.data_dir))


def test_finance_reconciles_over_http(client: TestClient, make_key: Callable[..., str],
                                      database: Any) -> None:
    finance, other, auditor = (bearer(make_key("finance", name="alice")), bearer(make_key("finance", name="bob")),
                               bearer(make_key("auditor")))
    recon = _harness(database.factory, client)
    a = ops("mir", 4)
    gone = Op("mir", "gone", "900000000001", "900000000002", 2_000_000, day=DAY - dt.timedelta(days=10))
    recon.expect(*a, gone)
    data = write_file("mir", [a[0].record(), a[1].record(), a[2].record(fee_delta=4),
                              dataclasses.replace(a[3].record(), gross=a[3].amount + 9,
                                                  net=a[3].amount + 9 - a[3].fee)])

    assert _upload(client, auditor, data).status_code == 403
    uploaded = _upload(client, finance, data)
    assert uploaded.status_code == 201, uploaded.text
    assert (uploaded.json()["duplicate"], uploaded.json()["status"]) == (False, "registered")
    # Loading follows the upload's commit (a task: inline here, with no broker).
    file = client.get(f"/v1/reconciliation/files/{uploaded.json()['id']}", headers=auditor).json()
    assert (file["status"], file["records"], file["errors"]) == ("loaded", 4, 0)
    again = _upload(client, finance, data, name="other-name.csv")
    assert (again.status_code, again.json()["duplicate"], again.json()["id"]) == (200, True, file["id"])

    started = client.post("/v1/reconciliation/runs", headers=finance, json={"file_id": file["id"]})
    assert started.status_code == 202, started.text
    run = client.get(f"/v1/reconciliation/runs/{started.json()['id']}", headers=auditor).json()
    assert (run["status"], run["progress_percent"]) == ("completed", 100)
    assert [s["status"] for s in run["steps"]] == ["done", "done", "done"]
    assert run["summary"]["outcomes"]["matched"] == 2
    refused = client.post("/v1/reconciliation/runs", headers=finance, json={"file_id": file["id"]})
    assert refused.status_code == 409
    assert refused.json()["code"] == "recon_file_already_reconciled"
    assert refused.json()["errors"]["run_id"] == run["id"]

    page = client.get(f"/v1/reconciliation/runs/{run['id']}/results", headers=auditor,
                      params={"limit": 2}).json()
    rest = client.get(f"/v1/reconciliation/runs/{run['id']}/results", headers=auditor,
                      params={"cursor": page["next_cursor"]}).json()
    assert len(page["data"]) + len(rest["data"]) == 5
    (variance,) = client.get(f"/v1/reconciliation/runs/{run['id']}/results", headers=auditor,
                             params={"outcome": "fee_variance"}).json()["data"]
    assert (variance["fee_variance"], variance["currency"]) == ("0.04", "RUB")

    report = client.get(f"/v1/reconciliation/runs/{run['id']}/report.csv", headers=auditor)
    assert report.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(report.text)))
    assert sorted(r["outcome"] for r in rows) == ["amount_mismatch", "fee_variance", "matched", "matched",
                                                  "missing_in_file"]
    page_html = client.get(f"/v1/reconciliation/runs/{run['id']}/report.html", headers=auditor)
    assert page_html.headers["content-type"].startswith("text/html")
    assert "<svg" in page_html.text
    assert "amount mismatch" in page_html.text

    queue = client.get("/v1/reconciliation/exceptions", headers=auditor, params={"status": "open"}).json()["data"]
    by_kind = {e["kind"]: e for e in queue}
    assert set(by_kind) == {"amount_mismatch", "missing_in_file"}
    missing = by_kind["missing_in_file"]["id"]
    path = f"/v1/reconciliation/exceptions/{missing}"
    assert client.post(f"{path}/resolve", headers=auditor, json={"action": "ignore", "reason": "x"}).status_code == 403
    no_reason = client.post(f"{path}/resolve", headers=finance, json={"action": "write_off", "reason": ""})
    assert (no_reason.status_code, no_reason.json()["code"]) == (422, "recon_reason_required")
    pending = client.post(f"{path}/resolve", headers={**finance, "Idempotency-Key": "w-1"},
                          json={"action": "write_off", "reason": "the acquirer confirmed it never settled"})
    assert pending.json()["status"] == "pending_approval"
    replay = client.post(f"{path}/resolve", headers={**finance, "Idempotency-Key": "w-1"},
                         json={"action": "write_off", "reason": "the acquirer confirmed it never settled"})
    assert replay.status_code == 200
    own = client.post(f"{path}/approve", headers=finance, json={"reason": "fine by me"})
    assert (own.status_code, own.json()["code"]) == (403, "recon_writeoff_self_approval")
    approved = client.post(f"{path}/approve", headers=other, json={"reason": "checked the statement"})
    body = approved.json()
    assert (body["status"], body["resolution"]) == ("resolved", "write_off")
    assert body["entry_id"] is not None
    assert [a["action"] for a in body["actions"]] == ["opened", "write_off_requested", "write_off_approved"]
    assert body["approvals"][0]["requested_by"].endswith(":alice")
    assert body["approvals"][0]["decided_by"].endswith(":bob")
    assert body["approvals"][0]["amount"] == "20000.00"
    assigned = client.post(f"/v1/reconciliation/exceptions/{by_kind['amount_mismatch']['id']}/assign",
                           headers=finance, json={"assignee": "carol"})
    assert assigned.json()["assigned_to"] == "carol"
    files = client.get(f"/v1/reconciliation/files/{file['id']}/errors", headers=auditor).json()
    assert files == {"data": [], "next_cursor": None}


def test_unusable_upload_reports_where_it_broke(client: TestClient, make_key: Callable[..., str]) -> None:
    finance = bearer(make_key("finance"))
    uploaded = _upload(client, finance, b"garbage;that;is;not;a;register\n")
    assert uploaded.status_code == 201
    file = client.get(f"/v1/reconciliation/files/{uploaded.json()['id']}", headers=finance).json()
    assert (file["status"], file["error_code"], file["errors"]) == ("unusable", "rail_file_malformed", 1)
    errors = client.get(f"/v1/reconciliation/files/{file['id']}/errors", headers=finance).json()["data"]
    assert [(e["line_number"], e["field"], e["reason"]) for e in errors] == [(1, "file", file["error_message"])]
    started = client.post("/v1/reconciliation/runs", headers=finance, json={"file_id": uploaded.json()["id"]})
    run = client.get(f"/v1/reconciliation/runs/{started.json()['id']}", headers=finance).json()
    assert (run["status"], run["error_code"]) == ("failed", "recon_file_unusable")
    assert "line 1" in run["error_message"]
    unknown = _upload(client, finance, b"x", rail="visa")
    assert (unknown.status_code, unknown.json()["code"]) == (422, "recon_unknown_rail")
