"""The matching rules and outcomes, each on real files written by the rails' own
writers and read back by their parsers, on PostgreSQL and on SQLite (the ``recon``
harness runs each test on both): the same outcomes, rules and balances."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

from tests.conftest import Database
from tests.reconciliation.factories import DAY, SETTLED, Harness, Op, ops, settings_for, write_file


def test_every_outcome_of_one_file(recon: Harness) -> None:
    a = ops("mir", 7)
    old = dataclasses.replace(a[6], day=DAY - dt.timedelta(days=10))     # past its SLA by the file's date
    recon.expect(*a[:6], old)
    unknown = Op("mir", "nobody", "999999999999", "999999999999", 4_200)
    records = [a[0].record(), a[1].record(), a[2].record(), a[3].record(fee_delta=7),
               a[4].record(amount_delta=50), a[5].record(), a[5].record(), unknown.record(),
               dataclasses.replace(a[0].record(), record_type=a[0].record_type.CHARGEBACK, gross=-a[0].amount,
                                   fee=0, net=-a[0].amount, rail_reference=a[0].rail_reference + "C")]
    run_id, summary = recon.reconcile(write_file("mir", records))

    assert recon.by_expected(run_id) == {
        a[0].reference: "matched", a[1].reference: "matched", a[2].reference: "matched",
        a[3].reference: "fee_variance", a[4].reference: "amount_mismatch", a[5].reference: "matched",
        old.reference: "missing_in_file"}
    assert summary["outcomes"] == {"matched": 4, "fee_variance": 1, "fx_variance": 0, "late": 0,
                                   "amount_mismatch": 1, "missing_in_file": 1, "unexpected_in_file": 2,
                                   "duplicate": 1}
    booked = [a[0], a[1], a[2], a[3], a[5]]
    fees = sum(op.fee for op in booked) + 7
    assert recon.balance("rail:mir:receivable:RUB") == -sum(op.amount for op in booked)
    assert recon.balance("rail:mir:fees:RUB") == fees
    assert recon.balance("bank:clearing:RUB") == sum(op.amount for op in booked) - fees
    kinds = sorted(k for (k,) in recon.sql("SELECT kind FROM recon_exceptions"))
    assert kinds == ["amount_mismatch", "duplicate", "missing_in_file", "unexpected_in_file", "unexpected_in_file"]
    states = recon.states()
    assert states[a[4].reference] == "settled:amount_mismatch"
    assert states[old.reference] == "open"
    assert states[a[0].reference] == "settled:matched"


def test_keys_fall_back_from_rail_reference_to_rrn_to_reference(recon: Harness) -> None:
    by_rail_ref, by_rrn, by_reference = ops("mir", 3)
    twins = [Op("mir", f"twin-{n}", "777777777777", f"88888888888{n}", 5_000) for n in (1, 2)]
    recon.expect(by_rail_ref, by_rrn, by_reference, *twins)
    records = [by_rail_ref.record(),
               dataclasses.replace(by_rrn.record(), rail_reference="111111111111"),
               dataclasses.replace(by_reference.record(), rail_reference="222222222222", rrn="333333333333"),
               # Same rail reference and amount: told apart by their RRNs.
               twins[1].record(), twins[0].record()]
    run_id, _ = recon.reconcile(write_file("mir", records))
    rules = {r["expected"]: r["rule"] for r in recon.results(run_id)}
    assert rules == {by_rail_ref.reference: "exact:rail_reference", by_rrn.reference: "exact:rrn",
                     by_reference.reference: "exact:reference", "twin-1": "exact:rrn", "twin-2": "exact:rrn"}
    assert {r["expected"]: r["items"] for r in recon.results(run_id)}["twin-1"] == "twin-1"


def test_tolerance_absolute_and_relative(database: Database, tmp_path: object) -> None:
    from pathlib import Path

    recon = Harness(database.factory, settings_for(database.url, Path(str(tmp_path)) / "d",
                                                      recon_amount_tolerance=30,
                                                      recon_relative_tolerance=Decimal("0.001")))
    within_abs, within_rel, beyond = (Op("mir", "t1", "1", "1", 10_000), Op("mir", "t2", "2", "2", 100_000),
                                      Op("mir", "t3", "3", "3", 10_000))
    recon.expect(within_abs, within_rel, beyond)
    records = [within_abs.record(amount_delta=-30), within_rel.record(amount_delta=100),
               beyond.record(amount_delta=31)]
    run_id, _ = recon.reconcile(write_file("mir", records))
    assert recon.by_expected(run_id) == {"t1": "matched", "t2": "matched", "t3": "amount_mismatch"}
    # The rail paid 30 less on t1 and 100 more on t2: the differences are booked as variance.
    assert recon.balance("recon:mir:variance:RUB") == 30 - 100
    assert recon.balance("rail:mir:receivable:RUB") == -110_000


def test_date_window(recon: Harness) -> None:
    op = ops("mir", 1)[0]
    recon.expect(op)
    far = dataclasses.replace(op.record(), transaction_date=DAY + dt.timedelta(days=4))
    run_id, summary = recon.reconcile(write_file("mir", [far], settled=SETTLED + dt.timedelta(days=4)))
    assert summary["outcomes"]["unexpected_in_file"] == 1
    assert recon.by_expected(run_id) == {}


def test_several_records_settle_one_expectation(recon: Harness) -> None:
    op = Op("mir", "split-1", "424242424242", "1", 10_000)
    recon.expect(op, expected_fee=False)
    first = dataclasses.replace(op.record(), gross=6_000, fee=90, net=5_910, rrn="100000000001")
    second = dataclasses.replace(op.record(), gross=4_000, fee=60, net=3_940, rrn="100000000002")
    run_id, _ = recon.reconcile(write_file("mir", [first, second]))
    (result,) = recon.results(run_id)
    assert (result["outcome"], result["shape"], result["rule"]) == ("matched", "N:1", "sum:rail_reference")
    assert recon.balance("bank:clearing:RUB") == 5_910 + 3_940
    assert recon.balance("rail:mir:receivable:RUB") == -10_000


def test_one_record_settles_several_expectations(recon: Harness) -> None:
    payouts = [Op("unionpay", f"po-{n}", f"Q{n}", "", 1_000 * n, kind="payout") for n in (1, 2, 3)]
    recon.expect(*payouts, expected_fee=False, batch_reference="BATCH-7")
    captures = [Op("unionpay", f"cap-{n}", "QAUTH1", f"55555{n}1118123456", 2_500) for n in (1, 2)]
    recon.expect(*captures, expected_fee=False)
    batch = dataclasses.replace(payouts[0].record(), reference="BATCH-7", rail_reference="QBATCH", gross=-6_000,
                                fee=0, net=-6_000)
    captured = dataclasses.replace(captures[0].record(), rrn="", gross=5_000, fee=30, net=4_970)
    run_id, _ = recon.reconcile(write_file("unionpay", [batch, captured]), rail="unionpay")
    shapes = sorted((r["shape"], r["rule"], r["expected"]) for r in recon.results(run_id))
    assert shapes == [("1:N", "net:batch:reference", "po-1,po-2,po-3"),
                      ("1:N", "net:rail_reference", "cap-1,cap-2")]
    assert recon.balance("rail:unionpay:payouts:CNY") == 6_000
    assert recon.balance("rail:unionpay:receivable:CNY") == -5_000
    assert recon.balance("bank:clearing:CNY") == 4_970 - 6_000


def test_late_record_matches_an_expectation_overdue_from_an_earlier_cycle(recon: Harness) -> None:
    on_time, late = ops("mir", 2)
    recon.expect(on_time, late)
    first, _ = recon.reconcile(write_file("mir", [on_time.record()]), name="day1")
    assert recon.by_expected(first) == {on_time.reference: "matched"}
    later = SETTLED + dt.timedelta(days=1)
    second, summary = recon.reconcile(write_file("mir", [late.record(settled=later)], settled=later), name="day2")
    assert recon.by_expected(second) == {late.reference: "late"}
    assert summary["matches_booked"] == 1
    assert recon.balance("rail:mir:receivable:RUB") == -(on_time.amount + late.amount)


def test_late_arrival_closes_its_missing_exception(recon: Harness) -> None:
    late = ops("mir", 1)[0]
    other = ops("mir", 1, start=2)[0]
    recon.expect(late, other)
    past_sla = SETTLED + dt.timedelta(days=7)
    first, _ = recon.reconcile(write_file("mir", [dataclasses.replace(other.record(), settlement_date=past_sla)]),
                               name="a")
    assert recon.by_expected(first)[late.reference] == "missing_in_file"
    (status,) = recon.sql("SELECT status FROM recon_exceptions WHERE kind = 'missing_in_file'")
    assert status == ("open",)
    second, _ = recon.reconcile(write_file("mir", [late.record(settled=past_sla + dt.timedelta(days=1))]), name="b")
    assert recon.by_expected(second) == {late.reference: "late"}
    assert recon.sql("SELECT status, resolution, resolved_by FROM recon_exceptions WHERE kind = 'missing_in_file'") \
        == [("resolved", "arrived_late", "system")]


def test_a_record_repeating_a_settled_one_in_a_later_file_is_a_duplicate(recon: Harness) -> None:
    op = ops("mir", 1)[0]
    recon.expect(op)
    recon.reconcile(write_file("mir", [op.record()]), name="a")
    again, summary = recon.reconcile(write_file("mir", [op.record(), ops("mir", 1, start=9)[0].record()]), name="b")
    assert [(r["outcome"], r["rule"]) for r in recon.results(again)] == [
        ("duplicate", "repeats_settled"), ("unexpected_in_file", "no_expectation")]
    assert summary["matches_booked"] == 0
    assert recon.balance("rail:mir:receivable:RUB") == -op.amount


def test_fx_settlement_books_the_rate_difference(recon: Harness) -> None:
    quoted = Decimal("0.0785")
    same, moved = (Op("alipay", f"fx-{n}", f"2026111822001{n}", "", 100_000 + n, currency="RUB", fx_rate=quoted)
                   for n in (1, 2))
    recon.expect(same, moved, expected_fee=False)
    paid_rate = Decimal("0.0790")
    records = [same.record(), moved.record(rate=paid_rate)]
    run_id, _ = recon.reconcile(write_file("alipay", records), rail="alipay")
    assert recon.by_expected(run_id) == {"fx-1": "matched", "fx-2": "fx_variance"}
    net_moved = records[1].net
    expected_cny = int((Decimal(net_moved) * quoted).quantize(Decimal(1), rounding="ROUND_HALF_UP"))
    paid_cny = records[1].settlement_amount
    assert paid_cny is not None
    assert recon.balance("fx:gain_loss:CNY") == -(paid_cny - expected_cny)
    assert recon.balance("bank:clearing:CNY") == (records[0].settlement_amount or 0) + paid_cny
    assert recon.balance("fx:liquidity:RUB") == records[0].net + records[1].net
    assert recon.balance("rail:alipay:receivable:RUB") == -(same.amount + moved.amount)


def test_refunds_and_payouts_book_the_other_way(recon: Harness) -> None:
    refund = Op("unionpay", "rf-1", "QREF", "123456111800000A", 3_000, kind="refund")
    payout = Op("unionpay", "po-1", "QPAY", "", 5_000, kind="payout")
    refund = dataclasses.replace(refund, rrn="1234561118000000")
    recon.expect(refund, payout)
    run_id, _ = recon.reconcile(write_file("unionpay", [refund.record(), payout.record()]), rail="unionpay")
    assert recon.by_expected(run_id) == {"rf-1": "matched", "po-1": "matched"}
    assert recon.balance("rail:unionpay:receivable:CNY") == 3_000
    assert recon.balance("rail:unionpay:payouts:CNY") == 5_000
    assert recon.balance("bank:clearing:CNY") == -8_000


def test_dry_run_computes_the_same_outcomes_and_books_nothing(recon: Harness) -> None:
    a = ops("mir", 4)
    recon.expect(*a)
    data = write_file("mir", [a[0].record(), a[1].record(fee_delta=3), a[2].record(amount_delta=9),
                              ops("mir", 1, start=50)[0].record()])
    dry, dry_summary = recon.reconcile(data, dry_run=True)
    assert recon.entries() == 0
    assert recon.sql("SELECT count(*) FROM recon_exceptions") == [(0,)]
    assert set(recon.states().values()) == {"open"}
    assert recon.sql("SELECT count(*) FROM recon_settlement_batches") == [(0,)]
    live, live_summary = recon.reconcile(data)
    assert dry_summary["outcomes"] == live_summary["outcomes"]
    assert [(r["outcome"], r["expected"], r["items"]) for r in recon.results(dry)] == \
        [(r["outcome"], r["expected"], r["items"]) for r in recon.results(live)]
    assert live_summary["matches_booked"] == 2
    chunks = recon.scalar("SELECT count(DISTINCT batch_no) FROM recon_matches WHERE run_id = :r", r=live)
    assert recon.entries() == chunks
