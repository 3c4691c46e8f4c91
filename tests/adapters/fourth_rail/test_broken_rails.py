"""The conformance suite catches broken rails: each test breaks the fourth rail in one
way a real adapter or simulator could be wrong, and the check that covers it fails.

These are the weaknesses reviews found by running deliberately broken rails that the
suite used to pass; they stay here so the suite cannot quietly weaken again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, BinaryIO

import pytest

from adapters import testing
from adapters.base import (
    Discrepancy,
    FeeSchedule,
    Notification,
    RailError,
    RailResult,
    RecordError,
    RecordType,
    SettlementRecord,
    TxnStatus,
)
from tests.adapters.fourth_rail import plugin, protocol
from tests.adapters.fourth_rail import simulator as sim_module
from tests.adapters.fourth_rail.rail import FourthRail
from tests.adapters.fourth_rail.simulator import FourthSimulator, _approved

Check = Callable[..., None]


def caught(check: Check) -> None:
    """``check`` fails on the broken fourth rail (an assertion, or the rail error the
    breakage leads to)."""
    with pytest.raises((AssertionError, RailError)):
        check(plugin)


def test_settled_amounts_and_currencies(monkeypatch: pytest.MonkeyPatch) -> None:
    record = FourthSimulator._record

    def inflated(self: FourthSimulator, *args: Any) -> SettlementRecord:
        written = record(self, *args)
        return dataclasses.replace(written, gross=written.gross + 1, net=written.net + 1)

    monkeypatch.setattr(FourthSimulator, "_record", inflated)
    caught(testing.check_file_round_trip)


def test_settlement_date_other_than_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    write = FourthSimulator.write_settlement_file

    def day_early(self: FourthSimulator, out: BinaryIO, settlement_date: dt.date,
                  discrepancies: Sequence[Discrepancy] = (), seed: int | None = None,
                  rate: Decimal = Decimal(0)) -> list[Discrepancy]:
        return write(self, out, settlement_date - dt.timedelta(days=1), discrepancies, seed, rate)

    monkeypatch.setattr(FourthSimulator, "write_settlement_file", day_early)
    caught(testing.check_file_round_trip)


@pytest.mark.parametrize("operation", ["capture", "refund"])
def test_no_limit_on_captures_or_refunds(monkeypatch: pytest.MonkeyPatch, operation: str) -> None:
    change = FourthSimulator._change

    def unlimited(self: FourthSimulator, op: str, txn: sim_module._Txn, amount: int) -> dict[str, Any]:
        if op != operation or txn.status not in (TxnStatus.AUTHORIZED, TxnStatus.CAPTURED, TxnStatus.REFUNDED):
            return change(self, op, txn, amount)
        if op == "capture":
            self._settle_capture(txn, amount)
        else:
            txn.refunded += amount
            txn.status = TxnStatus.REFUNDED
            self._book.add(self._record(txn, RecordType.REFUND, -amount, txn.rail_reference))
        return _approved(txn, amount)

    monkeypatch.setattr(FourthSimulator, "_change", unlimited)
    caught(testing.check_refund_limits)


def test_a_retried_refund_moves_money_again(monkeypatch: pytest.MonkeyPatch) -> None:
    handle = FourthSimulator.handle

    def forgetful(self: FourthSimulator, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        if operation == "refund":
            self._answers.pop(request["reference"], None)
        return handle(self, operation, request)

    monkeypatch.setattr(FourthSimulator, "handle", forgetful)
    caught(testing.check_refund_limits)


def test_follow_up_answers_not_verified(monkeypatch: pytest.MonkeyPatch) -> None:
    call = FourthRail._call

    def trusting(self: FourthRail, operation: str, *args: Any, **extra: Any) -> RailResult:
        if operation == "authorize":
            return call(self, operation, *args, **extra)
        with monkeypatch.context() as patched:
            patched.setattr(protocol, "verify", lambda *_: True)
            return call(self, operation, *args, **extra)

    monkeypatch.setattr(FourthRail, "_call", trusting)
    caught(testing.check_signature_failure)


def test_notifications_not_verified(monkeypatch: pytest.MonkeyPatch) -> None:
    parse = FourthRail.parse_notification

    def credulous(self: FourthRail, headers: Mapping[str, str], body: bytes) -> Notification:
        return parse(self, {protocol.SIGNATURE_HEADER: protocol.sign(self._secret, body)}, body)

    monkeypatch.setattr(FourthRail, "parse_notification", credulous)
    caught(testing.check_notifications)


def test_a_resent_notification_gets_a_new_id(monkeypatch: pytest.MonkeyPatch) -> None:
    notification_for = FourthSimulator.notification_for
    sent: list[int] = []

    def renumbered(self: FourthSimulator, reference: str) -> tuple[dict[str, str], bytes]:
        _, body = notification_for(self, reference)
        sent.append(1)
        data = json.loads(body) | {"notification_id": f"N{len(sent)}"}
        body = protocol.encode(data)
        return {protocol.SIGNATURE_HEADER: protocol.sign(self._answer_key, body)}, body

    monkeypatch.setattr(FourthSimulator, "notification_for", renumbered)
    caught(testing.check_notifications)


def test_an_unknown_reference_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    query = FourthRail.query

    def inventive(self: FourthRail, request: Any) -> RailResult:
        found = query(self, request)
        return dataclasses.replace(found, status=TxnStatus.AUTHORIZED) if found.status is TxnStatus.NOT_FOUND \
            else found

    monkeypatch.setattr(FourthRail, "query", inventive)
    caught(testing.check_query_not_found)


def test_a_retry_answers_another_status(monkeypatch: pytest.MonkeyPatch) -> None:
    authorize = FourthRail.authorize
    answers: list[int] = []

    def fickle(self: FourthRail, request: Any) -> RailResult:
        answers.append(1)
        result = authorize(self, request)
        return dataclasses.replace(result, status=TxnStatus.PENDING) if len(answers) > 1 else result

    monkeypatch.setattr(FourthRail, "authorize", fickle)
    caught(testing.check_idempotent_retry)


def test_bad_lines_skipped_and_garbage_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    parse = FourthRail.parse_settlement_file

    def lenient(self: FourthRail, stream: BinaryIO) -> Iterator[SettlementRecord | RecordError]:
        try:
            yield from (item for item in parse(self, stream) if isinstance(item, SettlementRecord))
        except RailError:
            return

    monkeypatch.setattr(FourthRail, "parse_settlement_file", lenient)
    caught(testing.check_malformed_files)


def test_discrepancies_reported_but_not_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    apply = sim_module.apply_discrepancies

    def half_hearted(records: Sequence[SettlementRecord], discrepancies: Sequence[Discrepancy],
                     **options: Any) -> tuple[list[SettlementRecord], list[SettlementRecord], list[Discrepancy]]:
        written, _, applied = apply(records, discrepancies, **options)
        return written, [], applied      # LATE records are never written

    monkeypatch.setattr(sim_module, "apply_discrepancies", half_hearted)
    caught(testing.check_discrepancies)


def test_a_seeded_run_that_ignores_its_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = sim_module.plan_random
    runs: list[int] = []

    def unseeded(records: Sequence[SettlementRecord], seed: int, rate: Decimal) -> list[Discrepancy]:
        runs.append(1)
        return plan(records, seed + len(runs), rate)

    monkeypatch.setattr(sim_module, "plan_random", unseeded)
    caught(testing.check_seeded_discrepancies)


def test_a_fee_schedule_that_rounds_down(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclasses.dataclass(frozen=True)
    class Truncating(FeeSchedule):
        def fee_for(self, amount: int, record_type: RecordType = RecordType.PAYMENT) -> int:
            return int(Decimal(amount) * self.rate) + self.fixed if record_type is RecordType.PAYMENT else 0

    monkeypatch.setattr(FourthRail, "fee_schedule", Truncating(rate=Decimal("0.015"), fixed=100))
    caught(testing.check_spi_shape)
