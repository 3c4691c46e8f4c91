"""Console pages that only read, over HTTP, on one seeded database shared by this
module's tests (none of them changes anything: the auditor's actions are refused):
bad filters explained beside their fields and never a stack trace, not-found pages,
a run's results and CSV, cursor pagination."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from settlement.console.routes import exceptions as exception_routes
from settlement.console.routes import ledger as ledger_routes
from settlement.money import format_minor
from tests.console.conftest import Site
from tests.console.helpers import TRACEBACK, sign_in, state
from tests.console.seed import AMOUNTS

pytestmark = pytest.mark.postgres


@pytest.fixture
def client(shared_site: Site) -> Iterator[TestClient]:
    with TestClient(shared_site.app, raise_server_exceptions=False, follow_redirects=False) as test_client:
        yield test_client


def test_an_auditor_sees_everything_and_is_refused_every_action(client: TestClient, shared_site: Site) -> None:
    seeded, factory = shared_site.seeded, shared_site.database.factory
    token = sign_in(client, shared_site.key("auditor", name="carol"))
    target = seeded.large_mismatch
    before = state(factory, target)
    for path in ("/console/", f"/console/runs/{seeded.run_id}", "/console/exceptions", f"/console/exceptions/{target}",
                 "/console/accounts", "/console/accounts/bank:clearing:RUB", "/console/exports"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "action-form" not in page.text, path
    for action, form in (("resolve", {"action": "write_off", "reason": "r"}), ("assign", {"assignee": "carol"}),
                         ("approve", {"reason": "r"}), ("reject", {"reason": "r"})):
        refused = client.post(f"/console/exceptions/{target}/{action}", data={"csrf_token": token, **form})
        assert refused.status_code == 403, action
        assert "You are signed in with an auditor key" in refused.text
    assert state(factory, target) == before


#: Pages with bad filters, and the sentences each must show.
BAD_FILTERS = [
    ("/console/exceptions?kind=bogus&created_from=2026-13-01&run=abc&status=open",
     ["Outcome must be one of: amount_mismatch, missing_in_file, unexpected_in_file, duplicate (not &#39;bogus&#39;)",
      "From must be a date written as YYYY-MM-DD (not &#39;2026-13-01&#39;).",
      "Run must be a whole number of 1 or more (not &#39;abc&#39;)."]),
    ("/console/exceptions?created_from=2026-03-02&created_to=2026-03-01",
     ["The first day must not be after the last day."]),
    ("/console/exceptions?after=-1", ["The page cursor must be a whole number"]),
    ("/console/?status=lost&rail=visa", ["Rail must be one of: ", ", bank (not &#39;visa&#39;)",
                                         "Status must be one of: queued, running, completed, failed"]),
    ("/console/runs/{run}?outcome=fine", ["Outcome must be one of: matched, fee_variance"]),
    ("/console/accounts?currency=rubles", ["Currency is longer than 3 characters."]),
    ("/console/accounts?currency=XYZ", ["Currency must be an ISO 4217 code such as RUB or CNY (not &#39;XYZ&#39;)."]),
    ("/console/accounts/bank:clearing:RUB?as_of=yesterday", ["The date must be a date written as YYYY-MM-DD"]),
    ("/console/accounts?cursor=not-a-cursor", ["This page address is out of date."]),
]


def test_bad_filters_are_explained(client: TestClient, shared_site: Site) -> None:
    seeded = shared_site.seeded
    sign_in(client, shared_site.key("auditor"))
    for path, messages in BAD_FILTERS:
        response = client.get(path.format(run=seeded.run_id))
        assert response.status_code in (400, 422), path
        for message in messages:
            assert message in response.text, path
        assert 'class="field-error"' in response.text, path
        assert not TRACEBACK.search(response.text), path


def test_missing_things_are_named(client: TestClient, shared_site: Site) -> None:
    sign_in(client, shared_site.key("finance"))
    for path, status, message in (
            ("/console/runs/999999", 404, "There is no reconciliation run 999999."),
            ("/console/exceptions/999999", 404, "There is no exception 999999."),
            ("/console/accounts/nobody:RUB", 404, "There is no ledger account nobody:RUB."),
            ("/console/exports/999999", 404, "There is no export 999999."),
            ("/console/runs/abc", 404, "There is no such page."),
            ("/console/nowhere", 404, "There is no such page.")):
        response = client.get(path)
        assert response.status_code == status, path
        assert message in response.text, path
        assert "<h1>Not found</h1>" in response.text


def test_run_results_csv_and_pagination(client: TestClient, shared_site: Site,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    seeded = shared_site.seeded
    sign_in(client, shared_site.key("auditor"))
    page = client.get(f"/console/runs/{seeded.run_id}?outcome=amount_mismatch").text
    results = page[page.index("with outcome amount mismatch</caption>"):]
    results = results[:results.index("</table>")]
    assert results.count("<td>amount mismatch</td>") == 2
    assert "<td>matched</td>" not in results
    assert f'<td class="n">{seeded.bad_line_number}</td>' in page
    csv = client.get(f"/console/runs/{seeded.run_id}/report.csv")
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert lines[0].startswith("match_id,outcome,")
    assert len(lines) == 1 + sum(seeded.summary["outcomes"].values())
    total = sum(len(found) for found in seeded.exceptions.values())
    assert f"{total} exceptions," in client.get("/console/exceptions?assignee=none").text
    assert "No exceptions match these filters." in client.get("/console/exceptions?assignee=nobody-here").text
    # Cursor pagination, with pages of two: the queue (oldest first) and an account's postings (newest first).
    monkeypatch.setattr(exception_routes, "PAGE", 2)
    monkeypatch.setattr(ledger_routes, "PAGE", 2)
    ids = sorted(i for found in seeded.exceptions.values() for i in found)
    path, seen = "/console/exceptions", []
    while path:
        page = client.get(path).text
        seen += [int(i) for i in re.findall(r">Exception (\d+)</a>", page)]
        following = re.search(r'href="(/console/exceptions\?[^"]*after=\d+)">Next page', page)
        path = following.group(1).replace("&amp;", "&") if following else ""
    assert seen == ids
    path, amounts = "/console/accounts/rail:mir:receivable:RUB", []
    while path:
        page = client.get(path).text
        amounts += re.findall(r'<td class="n">([\d,.]+ RUB)</td>\s*<td class="n"></td>', page)
        older = re.search(r'href="(/console/accounts/[^"]*cursor=[^"]+)">Older postings', page)
        path = older.group(1).replace("&amp;", "&") if older else ""
    # One debit per sale captured (the sale books its capture), oldest last.
    assert [a.replace(",", "") for a in reversed(amounts)] == [f"{format_minor(a, 'RUB')} RUB" for a in AMOUNTS]
