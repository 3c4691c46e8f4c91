"""Crash safety: the process dies (or the transaction aborts) between the rail's
approval and the ledger write; the janitor then brings the payment to the state the
simulator knows, booking it exactly once."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from adapters.base import MethodKind, PaymentMethod, TxnStatus
from adapters.registry import RailRegistry, get_rail_plugin
from settlement.db.types import utcnow
from settlement.payments.models import CaptureMethod
from settlement.payments.rails import Rails
from settlement.payments.service import flows, janitor
from settlement.payments.service.flows import Context
from settlement.payments.service.payments import NewPayment
from tests.conftest import Database
from tests.ledger.invariants import ledger_violations
from tests.payments.fixtures import make_merchant

ROOT = Path(__file__).resolve().parents[2]

#: Runs one flow in a child process whose rail client kills the process right after
#: the rail answered (before the outcome is written).
CHILD = textwrap.dedent("""
    import json, os, sys
    from adapters.registry import RailRegistry, get_rail_plugin
    from settlement.db import make_engine, make_session_factory
    from settlement.payments.rails import Rails
    from settlement.payments.service import flows
    from settlement.payments.service.flows import Context
    from settlement.payments.service.payments import NewPayment, PaymentTerms
    from settlement.payments.models import CaptureMethod
    from adapters.base import MethodKind, PaymentMethod

    url, config_file, rail_name, action, arg = sys.argv[1:6]

    class Dying:
        def __init__(self, rail):
            self._rail = rail
        def __getattr__(self, name):
            real = getattr(self._rail, name)
            if name not in ("authorize", "capture", "refund", "void"):
                return real
            def call(request):
                result = real(request)
                print(json.dumps({"reference": request.reference, "status": result.status.value}), flush=True)
                os._exit(137)
            return call

    class Plugin:
        name = rail_name
        def create_rail(self, config):
            return Dying(get_rail_plugin(rail_name).create_rail(config))
        def create_simulator(self, **options):
            raise NotImplementedError

    registry = RailRegistry(entries=[])
    registry.register(Plugin())
    config = json.load(open(config_file))
    ctx = Context(make_session_factory(make_engine(url)), Rails(config, registry=registry),
                  PaymentTerms(janitor_grace_seconds=0))
    if action == "authorize":
        merchant_id, amount, pan = arg.split(",")
        flows.create_payment(ctx, NewPayment(merchant_id=int(merchant_id), amount=int(amount), currency="RUB",
                                             rail=rail_name, method=PaymentMethod(MethodKind.CARD, pan=pan,
                                                                                  expiry="3112"),
                                             capture_method=CaptureMethod.MANUAL))
    elif action == "capture":
        flows.capture(ctx, int(arg), 30000)
    print("survived", flush=True)
""")


def _die_in_child(db: Database, config_file: Path, rail: str, action: str, arg: str) -> dict[str, str]:
    done = subprocess.run([sys.executable, "-c", CHILD, db.url, str(config_file), rail, action, arg], cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert done.returncode == 137, done.stdout + done.stderr
    answer: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def _snapshot(db: Database) -> tuple[Any, ...]:
    with db.factory() as session:
        return tuple(session.execute(text(
            "SELECT (SELECT count(*) FROM ledger_entries), (SELECT count(*) FROM ledger_postings), "
            "(SELECT count(*) FROM ledger_holds), (SELECT string_agg(state, ',' ORDER BY id) FROM payment_attempts),"
            " (SELECT string_agg(state, ',' ORDER BY id) FROM payments)")).one())


def test_killed_between_approval_and_ledger_write(ctx: Context, pg_database: Database, rails_config_file: Path,
                                                  simulators: dict[str, Any]) -> None:
    seller = make_merchant(pg_database.factory, "RUB")
    answer = _die_in_child(pg_database, rails_config_file, "mir", "authorize", f"{seller},100000,2200000000000004")
    assert answer["status"] == "authorized"
    assert simulators["mir"].transaction_status(answer["reference"]) is TxnStatus.AUTHORIZED
    # The approval was never written: the attempt is pending, the ledger untouched.
    assert _snapshot(pg_database) == (0, 0, 0, "pending", "authorizing")

    report = janitor.reconcile(ctx)
    assert len(report.settled) == 1
    assert _snapshot(pg_database) == (1, 2, 1, "succeeded", "authorized")
    # A second run (or a late duplicate answer) books nothing twice.
    assert janitor.reconcile(ctx).settled == []
    assert _snapshot(pg_database) == (1, 2, 1, "succeeded", "authorized")

    with pg_database.factory() as session:
        payment_id = session.execute(text("SELECT id FROM payments")).scalar_one()
    answer = _die_in_child(pg_database, rails_config_file, "mir", "capture", str(payment_id))
    assert answer["status"] == "captured"
    assert _snapshot(pg_database) == (1, 2, 1, "succeeded,pending", "authorized")
    janitor.reconcile(ctx)
    janitor.reconcile(ctx)
    entries, _postings, holds, attempts, states = _snapshot(pg_database)
    assert (entries, holds, attempts, states) == (3, 2, "succeeded,succeeded", "partially_captured")
    with pg_database.factory() as session:
        assert ledger_violations(session) == []
        row = session.execute(text("SELECT amount_captured, commission_captured, seller_captured FROM payments")).one()
    assert tuple(row) == (30000, 1500, 28500)


class Crash(BaseException):
    """Stands for the process dying: nothing after the rail call runs."""


def _aborting(rails_config_file: Path, rail: str, operation: str) -> Rails:
    class Aborting:
        def __init__(self, real: Any) -> None:
            self._real = real

        def __getattr__(self, name: str) -> Any:
            real = getattr(self._real, name)
            if name != operation:
                return real

            def call(request: Any) -> Any:
                real(request)
                raise Crash(request.reference)
            return call

    class Plugin:
        name = rail

        def create_rail(self, config: Any) -> Any:
            return Aborting(get_rail_plugin(rail).create_rail(config))

        def create_simulator(self, **options: str) -> Any:
            raise NotImplementedError

    registry = RailRegistry(entries=[])
    registry.register(Plugin())  # type: ignore[arg-type]
    return Rails(json.loads(rails_config_file.read_text()), registry=registry)


@pytest.mark.parametrize("rail", ["unionpay", "alipay"])
def test_aborted_refund_and_void_are_settled_by_the_janitor(rail: str, ctx: Context, pg_database: Database,
                                                            rails_config_file: Path,
                                                            simulators: dict[str, Any]) -> None:
    seller = make_merchant(pg_database.factory, "CNY", "0.1")
    method = (PaymentMethod(MethodKind.CARD, pan="6216261000000000018", expiry="3012") if rail == "unionpay"
              else PaymentMethod(MethodKind.WALLET, buyer_id="2088102100000001"))
    payment = flows.create_payment(ctx, NewPayment(merchant_id=seller, amount=50000, currency="CNY", rail=rail,
                                                   method=method, capture_method=CaptureMethod.MANUAL))
    flows.capture(ctx, payment.id, 20000)
    for operation, act in (("refund", lambda c: flows.refund(c, payment.id, 5000)),
                           ("void", lambda c: flows.void(c, payment.id))):
        crashing = Context(ctx.factory, _aborting(rails_config_file, rail, operation), ctx.terms)
        with pytest.raises(Crash) as crashed:
            act(crashing)
        reference = str(crashed.value)
        assert simulators[rail].transaction_status(reference) in (TxnStatus.REFUNDED, TxnStatus.VOIDED,
                                                                  TxnStatus.CAPTURED)
        before = _snapshot(pg_database)
        assert before[3].endswith("pending")
        janitor.reconcile(ctx)
        janitor.reconcile(ctx)
        after = _snapshot(pg_database)
        assert after[3].split(",")[-1] == "succeeded"
    with pg_database.factory() as session:
        assert ledger_violations(session) == []
        row = session.execute(text("SELECT state, amount_captured, amount_refunded, amount_voided FROM payments")).one()
        pending = session.execute(text("SELECT count(*) FROM ledger_holds WHERE status = 'pending'")).scalar_one()
    assert tuple(row) == ("partially_refunded", 20000, 5000, 30000)
    assert pending == 0


def test_a_lost_answer_leaves_the_payment_unknown_until_the_janitor_asks(ctx: Context, pg_database: Database
                                                                          ) -> None:
    seller = make_merchant(pg_database.factory, "CNY")
    method = PaymentMethod(MethodKind.CARD, pan="6216261000000000018", expiry="3012")
    # UnionPay answers 03 (timeout) for amounts ending in 03 fen, having approved it.
    payment = flows.create_payment(ctx, NewPayment(merchant_id=seller, amount=10003, currency="CNY",
                                                   rail="unionpay", method=method))
    assert payment.state == "unknown"
    assert _snapshot(pg_database)[:3] == (0, 0, 0)
    janitor.reconcile(ctx)  # not due yet: the answer was lost a moment ago
    assert _snapshot(pg_database)[4] == "unknown"
    later = Context(ctx.factory, ctx.rails, ctx.terms, clock=lambda: utcnow() + dt.timedelta(seconds=30))
    janitor.reconcile(later)
    with pg_database.factory() as session:
        state = session.execute(text("SELECT state, amount_captured FROM payments")).one()
    assert tuple(state) == ("captured", 10003)
    assert _snapshot(pg_database)[:3] == (2, 5, 0)
