"""The console in Chromium: finance staff work the exceptions queue (a manual match, a
write-off above the threshold made by one user and approved by another), check the
ledger and export it; an auditor sees everything and can change nothing. Every page
passes the accessibility smoke check and is saved as a screenshot under
``test-output/console/<test>/``."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.console.browser import Pages
from tests.console.conftest import LiveServer
from tests.console.seed import AMOUNTS, MISMATCH_LARGE, MISSING, Seeded

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


def open_page(chromium: Any, server: LiveServer, folder: Path) -> Pages:
    context = chromium.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    return Pages(context.new_page(), folder)


def sign_in(pages: Pages, key: str, *, check: bool = False) -> None:
    page = pages.page
    page.goto("/console/")
    assert re.search(r"/console/sign-in\?next=", page.url)
    if check:
        pages.check("sign-in")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/console/$"))


def heading(pages: Pages) -> str:
    return str(pages.page.locator("h1").inner_text())


def cell_texts(pages: Pages, caption: str, column: int) -> list[str]:
    table = pages.page.locator("table", has=pages.page.locator("caption", has_text=caption))
    return [str(t).strip() for t in table.locator(f"tbody tr td:nth-child({column})").all_inner_texts()]


def test_finance_works_the_queue_with_maker_checker(chromium: Any, live_server: LiveServer, seeded: Seeded,
                                                    make_key: Callable[..., str], output_dir: Path) -> None:
    alice, bob = make_key("finance", name="alice"), make_key("finance", name="bob")
    pages = open_page(chromium, live_server, output_dir)
    page = pages.page
    sign_in(pages, alice, check=True)
    assert heading(pages) == "Reconciliation runs"
    pages.check("dashboard")
    # The skip link, the first Tab stop of a fresh page, takes keyboard users past the navigation.
    page.reload()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"

    # A run: its outcomes, and the line the file could not read.
    page.get_by_role("link", name=f"Run {seeded.run_id}", exact=True).click()
    assert heading(pages).startswith(f"Run {seeded.run_id}: mir settlement file")
    assert cell_texts(pages, "could not be read", 1) == [str(seeded.bad_line_number)]
    assert "1 missing in file" in page.locator("figure svg").get_attribute("aria-label")
    pages.check("run")

    # The queue, filtered to what the rail paid that nobody expected.
    page.get_by_role("link", name="Exceptions", exact=True).click()
    page.get_by_label("Outcome").select_option("unexpected_in_file")
    page.get_by_role("button", name="Filter").click()
    unexpected = seeded.exception("unexpected_in_file")
    assert cell_texts(pages, "exception", 1) == [f"Exception {unexpected}"]
    pages.check("exceptions-filtered")

    # Manual match: the unknown record is the sale the rail left out, under another reference.
    page.get_by_role("link", name=f"Exception {unexpected}").click()
    pages.check("exception-unexpected")
    form = page.locator("form[data-action=manual_match]")
    missing = seeded.exception("missing_in_file")
    assert "Expectation" in form.get_by_label("Match it with").inner_text()
    form.get_by_label("Reason (required)").fill("The rail's unknown record is sale 2 under its acquirer reference")
    form.get_by_role("button", name="Match and book").click()
    assert "Matched by hand" in page.locator(".notice").inner_text()
    assert page.locator(".status").first.inner_text() == "resolved"
    page.goto(f"/console/exceptions/{missing}")
    assert page.locator(".status").first.inner_text() == "resolved"
    assert "manual match by key:" in page.locator("dl.facts").inner_text()

    # Write-off above the threshold: alice asks, she cannot approve her own.
    page.goto(f"/console/exceptions/{seeded.large_mismatch}")
    form = page.locator("form[data-action=write_off]")
    assert "another finance user must approve it" in form.inner_text()
    form.get_by_label("Reason (required)").fill("The rail kept 150.00 RUB of sale 4; not worth chasing")
    form.get_by_role("button", name="Ask for approval of the write-off").click()
    assert "waits for another finance user" in page.locator("p.notice").first.inner_text()
    assert page.locator(".status").first.inner_text() == "pending approval"
    assert page.get_by_role("button", name="Approve and book the write-off").count() == 0
    assert "Another finance user must approve or reject it" in page.locator("main").inner_text()
    pages.check("exception-pending-own")
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    forged = page.request.post(f"/console/exceptions/{seeded.large_mismatch}/approve",
                               form={"csrf_token": token, "reason": "approving my own"})
    assert forged.status == 403
    assert "another finance user has to approve or reject it" in forged.text()

    # Bob approves it.
    second = open_page(chromium, live_server, output_dir)
    second.shown = pages.shown  # one numbering of screenshots
    sign_in(second, bob)
    second.page.goto(f"/console/exceptions/{seeded.large_mismatch}")
    second.check("exception-pending-other")
    approval = second.page.locator("form[data-action=approve]")
    approval.get_by_label("Reason (required)").fill("Checked against the acquirer's statement")
    approval.get_by_role("button", name="Approve and book the write-off").click()
    assert "approved and booked" in second.page.locator("p.notice").inner_text()
    assert second.page.locator(".status").first.inner_text() == "resolved"
    assert cell_texts(second, "Write-offs above", 5)[0].startswith("approved by key:")
    second.check("exception-approved")

    # The ledger shows what was booked, with the right amounts.
    assert (AMOUNTS[MISSING], AMOUNTS[MISMATCH_LARGE]) == (99_900, 480_000)
    page.get_by_role("link", name="Ledger").click()
    page.get_by_label("Code starts with").fill("recon:")
    page.get_by_role("button", name="Show accounts").click()
    pages.check("accounts")
    page.get_by_role("link", name="recon:writeoff:RUB").click()
    assert page.locator("dd.balance-now").inner_text() == "150.00 RUB"
    assert cell_texts(pages, "Postings of", 5) == ["150.00 RUB"]
    assert cell_texts(pages, "Postings of", 4)[0] == f"write-off of exception {seeded.large_mismatch} (amount_mismatch)"
    page.get_by_label("Date", exact=True).fill("2020-01-01")
    page.get_by_role("button", name="Show the balance").click()
    assert page.locator("dd.balance-as-of").inner_text() == "0.00 RUB"
    pages.check("account-writeoff-as-of")
    page.goto("/console/accounts/rail:mir:receivable:RUB")
    credits = cell_texts(pages, "Postings of", 6)
    descriptions = cell_texts(pages, "Postings of", 4)
    # The receivable of sale 2 (999.00 RUB) and of sale 4 (4,800.00 RUB) are cleared by the two resolutions.
    manual = next(i for i, d in enumerate(descriptions) if d.startswith(f"manual match of exception {unexpected}"))
    assert credits[manual] == "999.00 RUB"
    written_off = descriptions.index(f"write-off of exception {seeded.large_mismatch} (amount_mismatch)")
    assert credits[written_off] == "4,800.00 RUB"
    pages.check("account-receivable")

    # An export of everything, verified, downloaded.
    page.get_by_role("link", name="Exports").click()
    pages.check("exports")
    page.get_by_role("button", name="Start the export").click()
    assert "Verified" in page.locator(".verified").inner_text()
    pages.check("export")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the archive (zip)").click()
    archive = output_dir / "export.zip"
    download.value.save_as(str(archive))
    assert "manifest.json" in zipfile.ZipFile(archive).namelist()

    page.get_by_role("button", name="Sign out").click()
    assert "You signed out" in page.locator("p.notice").inner_text()
    page.goto("/console/exceptions")
    assert "/console/sign-in" in page.url
    assert not pages.errors
    assert not second.errors


def test_auditor_sees_everything_and_changes_nothing(chromium: Any, live_server: LiveServer, seeded: Seeded,
                                                    make_key: Callable[..., str], output_dir: Path) -> None:
    pages = open_page(chromium, live_server, output_dir)
    page = pages.page
    sign_in(pages, make_key("auditor", name="carol"))
    assert "read-only" in page.locator("header").inner_text()
    visits = {"dashboard": "/console/", "run": f"/console/runs/{seeded.run_id}", "dry-run": f"/console/runs/"
              f"{seeded.dry_run_id}", "exceptions": "/console/exceptions?status=open",
              "accounts": "/console/accounts", "account": "/console/accounts/bank:clearing:RUB?as_of=2099-12-31"}
    visits.update({f"exception-{kind}": f"/console/exceptions/{ids[0]}" for kind, ids in seeded.exceptions.items()})
    for name, path in visits.items():
        page.goto(path)
        assert page.locator("form.action-form").count() == 0, name
        assert page.locator("form[method=post]").count() == 1, f"{name}: only the sign-out form"
        pages.check(name)
    page.goto("/console/exceptions?kind=bogus&created_from=2026-02-30")
    assert page.locator("#f-kind").get_attribute("aria-invalid") == "true"
    assert page.locator("#f-created_from").get_attribute("aria-describedby") == "created_from-error"
    pages.check("exceptions-bad-filters", status=422)
    page.goto("/console/runs/424242")
    assert "There is no reconciliation run 424242." in page.locator("main").inner_text()
    pages.check("not-found", status=404)
    page.goto(f"/console/exceptions/{seeded.large_mismatch}")
    assert "auditor key" in page.locator("main").inner_text()
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    for action, form in (("resolve", {"action": "ignore", "reason": "forged"}), ("assign", {"assignee": "carol"}),
                         ("approve", {"reason": "forged"})):
        forged = page.request.post(f"/console/exceptions/{seeded.large_mismatch}/{action}",
                                   form={"csrf_token": token, **form})
        assert forged.status == 403, action
        assert "auditor key" in forged.text()
    page.reload()
    assert page.locator(".status").first.inner_text() == "open"
    assert not pages.errors
