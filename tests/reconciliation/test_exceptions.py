"""The exceptions queue: list, filter, assign; manual match, write-off with
maker-checker above the threshold, ignore; reasons, who and when; the entries a
resolution books."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from settlement.db import unit_of_work
from settlement.reconciliation.errors import (
    CounterpartClaimed,
    ExceptionClosed,
    InvalidResolution,
    ReasonRequired,
    SelfApproval,
)
from settlement.reconciliation.models import ExceptionAction
from settlement.reconciliation.service import queue
from settlement.reconciliation.service.resolve import Action, decide, resolve
from tests.reconciliation.factories import DAY, Harness, Op, ops, write_file

THRESHOLD = 10_000
ALICE, BOB = "key:1:alice", "key:2:bob"


@pytest.fixture
def queued(recon: Harness) -> dict[str, Any]:
    """One live run leaving one exception of every kind."""
    mismatch, twice, small = ops("mir", 3)
    missing = Op("mir", "gone-1", "555555555555", "555555555556", 50_000, day=DAY - dt.timedelta(days=10))
    recon.expect(mismatch, twice, small, missing)
    unknown = Op("mir", "who-1", "444444444444", "444444444445", 4_200)
    records = [mismatch.record(amount_delta=50), twice.record(), twice.record(), small.record(), unknown.record()]
    run_id, _ = recon.reconcile(write_file("mir", records))
    ids = {kind: i for i, kind in recon.sql("SELECT id, kind FROM recon_exceptions")}
    return {"run": run_id, "ids": ids, "mismatch": mismatch, "missing": missing, "unknown": unknown, "twice": twice}


def act(recon: Harness, exception_id: int, action: Action, actor: str = ALICE, reason: str = "checked",
        **extra: Any) -> Any:
    with unit_of_work(recon.factory) as session:
        found = resolve(session, exception_id, action=action, actor=actor, reason=reason, threshold=THRESHOLD,
                        **extra)
        return found.status, found.resolution, found.entry_id


def approve(recon: Harness, exception_id: int, actor: str, yes: bool = True) -> Any:
    with unit_of_work(recon.factory) as session:
        found = decide(session, exception_id, approve=yes, actor=actor, reason="second look")
        return found.status, found.entry_id


def test_list_filter_and_assign(recon: Harness, queued: dict[str, Any]) -> None:
    with unit_of_work(recon.factory) as session:
        everything = queue.list_exceptions(session)
        assert sorted(e.kind for e in everything) == ["amount_mismatch", "duplicate", "missing_in_file",
                                                      "unexpected_in_file"]
        assert [e.kind for e in queue.list_exceptions(session, kind="duplicate")] == ["duplicate"]
        assert queue.list_exceptions(session, rail="unionpay") == []
        page = queue.list_exceptions(session, limit=2)
        rest = queue.list_exceptions(session, after=page[-1].id)
        assert [e.id for e in page + rest] == [e.id for e in everything]
        queue.assign(session, queued["ids"]["duplicate"], assignee="carol", actor=ALICE)
    with unit_of_work(recon.factory) as session:
        (mine,) = queue.list_exceptions(session, assigned_to="carol")
        history = [(a.action, a.actor, a.reason) for a in queue.actions(session, mine.id)]
    assert history == [("opened", "system", f"run {queued['run']}: duplicate"),
                       ("assign", ALICE, "assigned to carol")]


def test_a_reason_is_required(recon: Harness, queued: dict[str, Any]) -> None:
    with pytest.raises(ReasonRequired):
        act(recon, queued["ids"]["unexpected_in_file"], Action.IGNORE, reason="   ")
    assert recon.sql("SELECT DISTINCT status FROM recon_exceptions") == [("open",)]


def test_manual_match_accepts_an_amount_mismatch(recon: Harness, queued: dict[str, Any]) -> None:
    before = recon.balance("rail:mir:receivable:RUB")
    status, resolution, entry = act(recon, queued["ids"]["amount_mismatch"], Action.MANUAL_MATCH,
                                    reason="the rail added a surcharge; agreed")
    assert (status, resolution) == ("resolved", "manual_match")
    assert entry is not None
    op = queued["mismatch"]
    assert recon.balance("rail:mir:receivable:RUB") - before == -op.amount
    assert recon.balance("recon:mir:variance:RUB") == -50
    assert recon.states()[op.reference] == "settled:amount_mismatch"
    with recon.factory() as session:   # through the ORM: a time on SQLite too
        (actor, reason, at) = session.execute(select(
            ExceptionAction.actor, ExceptionAction.reason, ExceptionAction.created_at).where(
            ExceptionAction.action == "manual_match")).one()
    assert (actor, reason) == (ALICE, "the rail added a surcharge; agreed")
    assert at.tzinfo is not None


def test_small_write_off_books_at_once(recon: Harness, queued: dict[str, Any]) -> None:
    unknown = queued["unknown"]
    status, resolution, entry = act(recon, queued["ids"]["unexpected_in_file"], Action.WRITE_OFF)
    assert (status, resolution) == ("resolved", "write_off")
    assert entry is not None
    net = unknown.amount - unknown.fee
    assert recon.balance("recon:writeoff:RUB") == -net
    assert recon.sql("SELECT count(*) FROM recon_match_items WHERE claimed AND item_id = "
                     "(SELECT item_id FROM recon_exceptions WHERE kind = 'unexpected_in_file')") == [(1,)]


def test_write_off_above_the_threshold_needs_a_second_person(recon: Harness, queued: dict[str, Any]) -> None:
    missing_id = queued["ids"]["missing_in_file"]
    entries = recon.entries()
    assert act(recon, missing_id, Action.WRITE_OFF, actor=ALICE) == ("pending_approval", None, None)
    with pytest.raises(SelfApproval):
        approve(recon, missing_id, ALICE)
    with pytest.raises(ExceptionClosed):
        act(recon, missing_id, Action.IGNORE, actor=BOB)
    assert recon.entries() == entries
    # The database holds the rule too, whatever the code does.
    with pytest.raises(IntegrityError), unit_of_work(recon.factory) as session:
        session.execute(text("UPDATE recon_writeoff_approvals SET status = 'approved', decided_by = requested_by, "
                             "decided_at = CURRENT_TIMESTAMP"))
    assert approve(recon, missing_id, BOB)[0] == "resolved"
    assert recon.entries() == entries + 1
    assert recon.balance("recon:writeoff:RUB") == queued["missing"].amount
    assert recon.sql("SELECT status, requested_by, decided_by FROM recon_writeoff_approvals") == [
        ("approved", ALICE, BOB)]
    assert recon.states()["gone-1"] == "written_off"


def test_a_rejected_write_off_reopens_the_exception(recon: Harness, queued: dict[str, Any]) -> None:
    missing_id = queued["ids"]["missing_in_file"]
    act(recon, missing_id, Action.WRITE_OFF, actor=ALICE)
    assert approve(recon, missing_id, BOB, yes=False) == ("open", None)
    assert act(recon, missing_id, Action.IGNORE, actor=BOB, reason="rail will resend")[:2] == ("resolved", "ignore")
    assert recon.states()["gone-1"] == "ignored"
    assert recon.balance("recon:writeoff:RUB") == 0


def test_manual_match_of_a_missing_expectation_with_an_unexpected_record(recon: Harness,
                                                                         queued: dict[str, Any]) -> None:
    item = recon.scalar("SELECT item_id FROM recon_exceptions WHERE kind = 'unexpected_in_file'")
    status, _, entry = act(recon, queued["ids"]["missing_in_file"], Action.MANUAL_MATCH, item_id=item,
                           reason="same sale, the rail lost our reference")
    assert status == "resolved"
    assert entry is not None
    assert recon.sql("SELECT status, resolution FROM recon_exceptions WHERE kind = 'unexpected_in_file'") == [
        ("resolved", "manual_match")]
    unknown, missing = queued["unknown"], queued["missing"]
    assert recon.balance("recon:mir:variance:RUB") == -(unknown.amount - missing.amount)
    with pytest.raises(ExceptionClosed):
        act(recon, queued["ids"]["unexpected_in_file"], Action.WRITE_OFF)


def test_manual_match_refuses_what_does_not_fit(recon: Harness, queued: dict[str, Any]) -> None:
    unexpected = queued["ids"]["unexpected_in_file"]
    with pytest.raises(InvalidResolution):
        act(recon, unexpected, Action.MANUAL_MATCH)
    refund = Op("mir", "rf-9", "444444444444", "1", 4_200, kind="refund")
    recon.expect(refund)
    refund_id = recon.scalar("SELECT id FROM recon_expectations WHERE reference = 'rf-9'")
    with pytest.raises(InvalidResolution):
        act(recon, unexpected, Action.MANUAL_MATCH, expectation_id=refund_id)
    settled = recon.scalar("SELECT expectation_id FROM recon_match_expectations WHERE claimed LIMIT 1")
    with pytest.raises(CounterpartClaimed):
        act(recon, unexpected, Action.MANUAL_MATCH, expectation_id=settled)
    later = dataclasses.replace(queued["unknown"], reference="who-1-late")
    recon.expect(later)
    later_id = recon.scalar("SELECT id FROM recon_expectations WHERE reference = 'who-1-late'")
    assert act(recon, unexpected, Action.MANUAL_MATCH, expectation_id=later_id)[0] == "resolved"
    assert recon.balance("recon:mir:variance:RUB") == 0


def test_the_same_action_key_replays(recon: Harness, queued: dict[str, Any]) -> None:
    duplicate = queued["ids"]["duplicate"]
    first = act(recon, duplicate, Action.WRITE_OFF, idempotency_key="k-1")
    assert act(recon, duplicate, Action.WRITE_OFF, idempotency_key="k-1") == first
    assert recon.sql("SELECT count(*) FROM recon_exception_actions WHERE exception_id = :e AND action = "
                     "'write_off'", e=duplicate) == [(1,)]
    with pytest.raises(ExceptionClosed):
        act(recon, duplicate, Action.WRITE_OFF)
    twice = queued["twice"]
    assert recon.balance("recon:writeoff:RUB") == -(twice.amount - twice.fee)


def test_actions_are_append_only(recon: Harness, queued: dict[str, Any]) -> None:
    with pytest.raises(Exception, match="append-only"), unit_of_work(recon.factory) as session:
        session.execute(text("UPDATE recon_exception_actions SET actor = 'someone else'"))
