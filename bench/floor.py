"""What a sale costs at the least on this machine, whatever the API's own code does.

    python bench/floor.py                    # 32 clients, 10 s per part
    python bench/floor.py --clients 32 --seconds 15

``bench/api.py`` measures the API as it is. This measures, one at a time and under
the same concurrency, the parts every sale needs whatever the code between them does,
and adds up their CPU time per sale. Two cores cannot carry more sales per second than
2,000 ms divided by that sum.

* ``database``: a sale's writes on the real schema (every trigger, constraint and
  index the migrations create), sent in the fewest round trips a sale can have. The
  intent before the rail call is one transaction of one statement: the idempotency
  key, the payment and its attempt. The outcome after it is one pipelined round trip:
  one statement updating the payment, the attempt and the key and inserting the
  reconciliation expectation and the webhook event, then the capture and the split
  through the ledger's own function (``ledger_post_batch_strict``), then COMMIT.
  Two reductions of it show where the time goes: the same without the ledger, and
  two bare transactions of one small row each (the cost of committing twice). One
  variant shows what grouping would change: ``--group`` sales (8 by default), each
  with its own intent, record their outcomes in one transaction, their ledger entries
  in one call, so the accounts every sale shares are locked once for all of them.
* ``rail``: one Mir sale (an authorization that captures) through the Mir client
  against the simulator: the simulator's CPU and the client's.
* ``http``: a FastAPI endpoint under ``settlement serve``'s server (uvicorn, the same
  number of workers) that validates the sale's request body with the API's own
  request model and answers a body as long as the API's: no database, no rail. The
  load generator is the one ``bench/api.py`` uses; its CPU is counted too.

CPU is read from /proc per role, as ``bench/api.py`` does; a part's throughput is
printed for reference only (the Python clients of the database and rail parts are
not tuned to saturate anything).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from api import PAN, CpuWatch, _fresh_database, _ready, _setup, _wait_for, run_scenario  # noqa: E402

from settlement.db.migrate import upgrade  # noqa: E402
from settlement.payments.schemas import PaymentCreate  # noqa: E402

AMOUNT, COMMISSION = 123456, 6172   # 1234.56 RUB, 5 % commission rounded down

# -- the database part ---------------------------------------------------------------

INTENT = """
WITH ids AS (SELECT nextval(pg_get_serial_sequence('payments', 'id')) AS p,
                    nextval(pg_get_serial_sequence('payment_attempts', 'id')) AS a),
key AS (INSERT INTO idempotency_keys (api_key_id, key, request_hash, method, path, state, created_at, locked_until,
                                      resource_type, resource_id, extra)
        SELECT 1, %(key)s, %(hash)s, 'POST', '/v1/payments', 'in_flight', now(), now() + interval '2 minutes',
               'payment', ids.p, '{}' FROM ids
        ON CONFLICT (api_key_id, key) DO NOTHING RETURNING id),
pay AS (INSERT INTO payments (id, merchant_id, rail, amount, currency, capture_method, state, method_kind,
                              method_display, description, settlement_currency, commission_rate, amount_authorized,
                              amount_captured, amount_voided, amount_refunded, commission_captured, seller_captured,
                              fx_mid_captured, commission_refunded, seller_refunded, fx_mid_refunded,
                              in_flight_attempt_id, metadata, created_at, updated_at)
        SELECT ids.p, m.id, 'mir', %(amount)s, 'RUB', 'automatic', 'authorizing', 'card', '220000******0004', '',
               m.settlement_currency, m.commission_rate, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ids.a, '{}', now(), now()
          FROM ids, merchants m WHERE m.id = %(merchant)s RETURNING id),
att AS (INSERT INTO payment_attempts (id, payment_id, operation, reference, amount, currency, state, final, reason,
                                      booking, created_at, next_check_at, checks)
        SELECT ids.a, ids.p, 'authorize', %(reference)s, %(amount)s, 'RUB', 'pending', false, '', '{}', now(),
               now() + interval '2 minutes', 0 FROM ids RETURNING id)
SELECT ids.p, ids.a, (SELECT id FROM key), (SELECT count(*) FROM pay), (SELECT count(*) FROM att) FROM ids
"""

OUTCOME = """
WITH att AS (UPDATE payment_attempts SET state = 'succeeded', rail_reference = %(rrn)s, response_code = '00',
                    approval_code = '123456', completed_at = now(), next_check_at = NULL
              WHERE id = %(attempt)s AND state = 'pending' RETURNING id),
pay AS (UPDATE payments SET state = 'captured', amount_authorized = %(amount)s, amount_captured = %(amount)s,
               commission_captured = %(commission)s, seller_captured = %(seller)s, in_flight_attempt_id = NULL,
               rail_reference = %(rrn)s, updated_at = now()
         WHERE id = %(payment)s AND in_flight_attempt_id = %(attempt)s RETURNING id),
exp AS (INSERT INTO recon_expectations (rail, kind, reference, rail_reference, rrn, amount, signed_amount, currency,
                                        expected_fee, transaction_date, expected_settlement_date, missing_after,
                                        payment_id, status, metadata, created_at)
        VALUES ('mir', 'payment', %(reference)s, %(rrn)s, %(rrn)s, %(amount)s, %(amount)s, 'RUB', 1852,
                current_date, current_date + 1, current_date + 3, %(payment)s, 'open', '{}', now())
        ON CONFLICT (rail, kind, reference) DO NOTHING RETURNING id),
evt AS (INSERT INTO webhook_events (public_id, key, type, data, created_at)
        VALUES (%(event)s, %(event_key)s, 'payment.captured', %(event_data)s, now()) RETURNING id),
key AS (UPDATE idempotency_keys SET state = 'done', status_code = 201, content_type = 'application/json',
               response_body = %(body)s, completed_at = now() WHERE id = %(key)s RETURNING id)
SELECT (SELECT count(*) FROM att) + (SELECT count(*) FROM pay) + (SELECT count(*) FROM exp)
       + (SELECT count(*) FROM evt) + (SELECT count(*) FROM key)
"""

LEDGER = "SELECT ledger_post_batch_strict(%s::json, %s::json)"

BARE_INTENT = """
INSERT INTO idempotency_keys (api_key_id, key, request_hash, method, path, state, created_at, locked_until, extra)
VALUES (1, %(key)s, %(hash)s, 'POST', '/v1/payments', 'in_flight', now(), now() + interval '2 minutes', '{}')
RETURNING id
"""

BARE_OUTCOME = "UPDATE idempotency_keys SET state = 'done', status_code = 201, completed_at = now() WHERE id = %s"

# An answer as long as the API's answer to a sale (about 800 bytes).
ANSWER = json.dumps({"id": 1, "state": "captured", "merchant_id": 1, "rail": "mir", "amount": "1234.56",
                     "currency": "RUB", "capture_method": "automatic", "amount_authorized": "1234.56",
                     "amount_capturable": "0.00", "amount_captured": "1234.56", "amount_voided": "0.00",
                     "amount_refunded": "0.00", "commission": "61.72", "settlement_currency": "RUB",
                     "seller_amount": "1172.84", "fx": None, "payment_method": "220000******0004",
                     "rail_reference": "812333361665", "operation_in_progress": None, "failure_code": None,
                     "failure_message": None, "description": "", "buyer_reference": None, "metadata": {},
                     "created_at": "2026-11-22T07:37:18.821850Z", "updated_at": "2026-11-22T07:37:18.826727Z"})


def _ledger_batch(payment: int, attempt: int, merchant: int, reference: str) -> tuple[list[Any], list[Any]]:
    """A sale's capture and split, as the ledger's batch function takes them."""
    meta = {"payment_id": str(payment), "attempt_id": str(attempt), "merchant_id": str(merchant), "rail": "mir",
            "reference": reference}
    capture, split = f"payments:attempt:{attempt}:capture", f"payments:attempt:{attempt}:split"
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    entries = [{"k": capture, "h": uuid.uuid4().hex * 2, "kind": "payment.capture", "eff": now,
                "d": f"sale of payment {payment}", "m": meta},
               {"k": split, "h": uuid.uuid4().hex * 2, "kind": "payment.split", "eff": now,
                "d": f"split of capture {attempt} of payment {payment}", "m": meta}]
    postings = [{"k": capture, "code": "rail:mir:receivable:RUB", "s": "D", "amt": AMOUNT, "c": "RUB"},
                {"k": capture, "code": "payments:clearing:RUB", "s": "C", "amt": AMOUNT, "c": "RUB"},
                {"k": split, "code": "payments:clearing:RUB", "s": "D", "amt": AMOUNT, "c": "RUB"},
                {"k": split, "code": "marketplace:commission:RUB", "s": "C", "amt": COMMISSION, "c": "RUB"},
                {"k": split, "code": f"merchant:{merchant}:payable:RUB", "s": "C", "amt": AMOUNT - COMMISSION,
                 "c": "RUB"}]
    return entries, postings


def _intent(conn: psycopg.Connection[Any], merchant: int) -> tuple[int, int, int, str]:
    """A sale's first transaction: its payment, attempt and key (payment, attempt,
    key ids and the attempt's reference)."""
    reference = "au" + uuid.uuid4().hex[:22]
    with conn.pipeline(), conn.transaction():
        cursor = conn.execute(INTENT, {"key": uuid.uuid4().hex, "hash": uuid.uuid4().hex * 2, "amount": AMOUNT,
                                       "merchant": merchant, "reference": reference})
    row = cursor.fetchone()
    if row is None or row[2] is None or row[3] != 1 or row[4] != 1:
        raise RuntimeError(f"the intent was not written: {row}")
    return row[0], row[1], row[2], reference


def _outcomes(conn: psycopg.Connection[Any], merchant: int, intents: list[tuple[int, int, int, str]], *,
              ledger: bool) -> None:
    """The outcomes of sales whose intents were written (the rail calls between are
    another part of this bench), in one transaction sent in one round trip: each
    sale's one statement, then one ledger call with all their entries, then COMMIT."""
    entries: list[Any] = []
    postings: list[Any] = []
    with conn.pipeline(), conn.transaction():
        outcomes = []
        for payment, attempt, key, reference in intents:
            rrn = str(uuid.uuid4().int)[:12]
            data = json.dumps({"payment_id": payment, "state": "captured", "amount": "1234.56",
                               "currency": "RUB", "rail_reference": rrn})
            outcomes.append(conn.execute(OUTCOME, {
                "rrn": rrn, "attempt": attempt, "payment": payment, "amount": AMOUNT, "commission": COMMISSION,
                "seller": AMOUNT - COMMISSION, "reference": reference, "event": "evt_" + uuid.uuid4().hex,
                "event_key": f"payment:{payment}:captured:{attempt}", "event_data": data, "body": ANSWER.encode(),
                "key": key}))
            sale_entries, sale_postings = _ledger_batch(payment, attempt, merchant, reference)
            entries += sale_entries
            postings += sale_postings
        posted = conn.execute(LEDGER, (json.dumps(entries), json.dumps(postings))) if ledger else None
    for outcome in outcomes:
        counted = outcome.fetchone()
        if counted is None or counted[0] != 5:
            raise RuntimeError(f"an outcome wrote {counted} of its 5 rows")
    if posted is not None and posted.fetchone() is None:
        raise RuntimeError("the ledger wrote nothing")


def _sales(conn: psycopg.Connection[Any], merchant: int, *, ledger: bool, group: int = 1) -> int:
    """``group`` sales' writes: each one's intent in its own transaction, then their
    outcomes in one. Returns ``group``."""
    _outcomes(conn, merchant, [_intent(conn, merchant) for _ in range(group)], ledger=ledger)
    return group


def _bare(conn: psycopg.Connection[Any], _merchant: int) -> int:
    with conn.pipeline(), conn.transaction():
        cursor = conn.execute(BARE_INTENT, {"key": uuid.uuid4().hex, "hash": uuid.uuid4().hex * 2})
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("the key was not written")
    with conn.pipeline(), conn.transaction():
        conn.execute(BARE_OUTCOME, (row[0],))
    return 1


def _drive(clients: int, seconds: float, work: Callable[[int], int]) -> tuple[int, float]:
    """Run ``work(client)`` in ``clients`` threads until ``seconds`` have passed; the
    sales done (what the calls returned, added up) and the time taken."""
    done = [0] * clients
    failures: list[BaseException] = []
    deadline = time.perf_counter() + seconds

    def client(n: int) -> None:
        try:
            while time.perf_counter() < deadline:
                done[n] += work(n)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            failures.append(exc)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"a client failed: {failures[0]!r}")
    return sum(done), time.perf_counter() - started


def database_parts(url: str, merchant: int, clients: int, seconds: float,
                   group: int) -> dict[str, tuple[int, float, float]]:
    """Sales, seconds and PostgreSQL CPU ms per sale for each reduction of the sale."""
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    connections = [psycopg.connect(conninfo) for _ in range(clients)]
    watch = CpuWatch(url.rsplit("/", 1)[1], -1, -1)
    results = {}
    try:
        variants: dict[str, Callable[[psycopg.Connection[Any], int], int]] = {
            "two bare commits": _bare,
            "the sale without the ledger": lambda conn, merchant: _sales(conn, merchant, ledger=False),
            "the sale": lambda conn, merchant: _sales(conn, merchant, ledger=True),
            f"the sale, {group} outcomes per transaction": (
                lambda conn, merchant: _sales(conn, merchant, ledger=True, group=group)),
        }
        for name, variant in variants.items():
            _drive(clients, 1, lambda n, v=variant: v(connections[n], merchant))  # type: ignore[misc]  # warm-up
            before = watch.snapshot(os.getpid())
            sales, elapsed = _drive(clients, seconds, lambda n, v=variant: v(connections[n], merchant))  # type: ignore[misc]
            cpu = watch.since(before, os.getpid())
            results[name] = (sales, elapsed, cpu["pg"] * 1000 / sales)
    finally:
        for conn in connections:
            conn.close()
    return results


def _open_sale_accounts(url: str) -> None:
    """The accounts a RUB sale over Mir posts to, opened as the API opens them."""
    from settlement.db import make_engine, make_session_factory, unit_of_work
    from settlement.payments import accounts

    with unit_of_work(make_session_factory(make_engine(url))) as session:
        accounts.ensure(session, [accounts.receivable("mir", "RUB"), accounts.clearing("RUB"),
                                  accounts.commission("RUB")])


def _verify_ledger(url: str) -> None:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        unbalanced = conn.execute("SELECT currency FROM ledger_postings GROUP BY currency, pending HAVING "
                                  "sum(CASE WHEN side = 'D' THEN amount ELSE -amount END) <> 0").fetchall()
    if unbalanced:
        raise SystemExit(f"the ledger does not balance in {unbalanced}")


# -- the rail part -------------------------------------------------------------------


def rail_part(rails_file: Path, simulator: int, clients: int, seconds: float) -> tuple[int, float, float, float]:
    """Sales, seconds, and the simulator's and the client's CPU ms per sale."""
    from adapters.base import AuthorizeRequest, MethodKind, PaymentMethod
    from settlement.payments.rails import Rails, load_config

    rails = Rails(load_config(rails_file))
    mir = rails.get("mir")
    method = PaymentMethod(MethodKind.CARD, pan=PAN, expiry="3112")

    def sale(_client: int) -> int:
        result = mir.authorize(AuthorizeRequest(reference="au" + uuid.uuid4().hex[:22], amount=AMOUNT,
                                                currency="RUB", method=method, capture=True))
        if result.status.value != "captured":
            raise RuntimeError(f"the simulator answered {result}")
        return 1

    watch = CpuWatch("-", -1, simulator)
    try:
        _drive(clients, 1, sale)
        before = watch.snapshot(os.getpid())
        sales, elapsed = _drive(clients, seconds, sale)
        cpu = watch.since(before, os.getpid())
    finally:
        rails.close()
    return sales, elapsed, cpu["rail"] * 1000 / sales, cpu["load"] * 1000 / sales


# -- the HTTP part -------------------------------------------------------------------


def bare_app() -> Any:
    """The API's sale endpoint without its work: the same request model and path, an
    answer of the same length (``uvicorn floor:bare_app --factory``)."""
    from fastapi import FastAPI
    from fastapi.responses import Response

    app = FastAPI()
    body = ANSWER.encode()

    @app.post("/v1/payments", status_code=201)
    def create(payment: PaymentCreate) -> Response:
        return Response(body, status_code=201, media_type="application/json")

    @app.get("/readyz")
    def ready() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _serve(factory: str, env: dict[str, str], args: argparse.Namespace, merchant: int, database: str,
           simulator: int) -> dict[str, Any]:
    """Serve ``floor:<factory>`` under uvicorn and drive it with the API bench's load
    generator (its sale scenario): the samples, and CPU seconds by role."""
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", f"floor:{factory}", "--factory", "--workers",
                               str(args.workers), "--port", str(args.port), "--log-level", "warning",
                               "--no-access-log"],
                              cwd=HERE, env={**os.environ, **env, "PYTHONPATH": f"{HERE}{os.pathsep}{HERE.parent}"})
    try:
        _wait_for(lambda: _ready(args.port), factory)
        run_scenario(args.port, "sale", "-", merchant, 1, args.clients, 1)
        watch = CpuWatch(database, server.pid, simulator)
        result: dict[str, Any] = run_scenario(args.port, "sale", "-", merchant, 1, args.clients, args.seconds, watch)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    if result["errors"]:
        raise SystemExit(f"{factory} answered errors: {result['errors']}")
    return result


def http_part(args: argparse.Namespace) -> tuple[int, float, float, float]:
    """Requests, seconds, and the server's and the load generator's CPU ms per request."""
    result = _serve("bare_app", {}, args, 1, "-", -1)
    requests = len(result["samples"])
    return requests, result["elapsed"], result["cpu"]["api"] * 1000 / requests, result["cpu"]["load"] * 1000 / requests


# -- a whole sale by the least code -------------------------------------------------


class _Grouper:
    """Outcomes of concurrent requests recorded together: the first request to find
    no group being written writes every outcome waiting at that moment (up to
    ``size``) in one transaction on its own connection; the others wait for it."""

    def __init__(self, merchant: int, size: int) -> None:
        self.merchant, self.size = merchant, size
        self.lock = threading.Lock()
        self.waiting: list[tuple[tuple[int, int, int, str], Any]] = []
        self.writing = False

    def record(self, conn: psycopg.Connection[Any], intent: tuple[int, int, int, str]) -> None:
        from concurrent.futures import Future

        done: Future[None] = Future()
        with self.lock:
            self.waiting.append((intent, done))
            lead = not self.writing
            self.writing = self.writing or lead
        while lead:
            with self.lock:
                group, self.waiting = self.waiting[:self.size], self.waiting[self.size:]
                if not group:
                    self.writing = lead = False
                    break
            try:
                _outcomes(conn, self.merchant, [item for item, _ in group], ledger=True)
            except Exception as exc:  # noqa: BLE001 - handed to every request of the group
                for _, future in group:
                    future.set_exception(exc)
            else:
                for _, future in group:
                    future.set_result(None)
        done.result()


def minimal_app() -> Any:
    """A sale by the least code that still does all of a sale's work: the intent's
    statement, the Mir sale through the Mir client, the outcome's statements and the
    ledger call with the COMMIT, on a pool of plain psycopg connections; no ORM, no
    dependencies but the request model, no key check (``uvicorn floor:minimal_app
    --factory``, configured by ``FLOOR_DATABASE``, ``FLOOR_RAILS``, ``FLOOR_MERCHANT``
    and ``FLOOR_GROUP``: outcomes per transaction, 1 for one each)."""
    import queue

    from fastapi import FastAPI
    from fastapi.responses import Response

    from adapters.base import AuthorizeRequest, MethodKind, PaymentMethod
    from settlement.payments.rails import Rails, load_config

    conninfo = os.environ["FLOOR_DATABASE"]
    merchant = int(os.environ["FLOOR_MERCHANT"])
    group = int(os.environ.get("FLOOR_GROUP", "1"))
    mir = Rails(load_config(Path(os.environ["FLOOR_RAILS"]))).get("mir")
    idle: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
    grouper = _Grouper(merchant, group) if group > 1 else None
    app = FastAPI()
    body = ANSWER.encode()

    @app.post("/v1/payments", status_code=201)
    def create(payment: PaymentCreate) -> Response:
        try:
            conn = idle.get_nowait()
        except queue.Empty:
            conn = psycopg.connect(conninfo)
        try:
            intent = _intent(conn, merchant)
            method = PaymentMethod(MethodKind.CARD, pan=getattr(payment.payment_method, "pan", None),
                                   expiry=getattr(payment.payment_method, "expiry", None))
            result = mir.authorize(AuthorizeRequest(reference=intent[3], amount=AMOUNT, currency="RUB",
                                                    method=method, capture=True))
            if result.status.value != "captured":
                return Response(b"{}", status_code=402, media_type="application/json")
            if grouper is not None:
                grouper.record(conn, intent)
            else:
                _outcomes(conn, merchant, [intent], ledger=True)
        finally:
            idle.put(conn)
        return Response(body, status_code=201, media_type="application/json")

    @app.get("/readyz")
    def ready() -> dict[str, str]:
        return {"status": "ok"}

    return app


def minimal_part(url: str, merchant: int, rails_file: Path, simulator: int, args: argparse.Namespace,
                 group: int) -> dict[str, Any]:
    """The minimal sale endpoint under the API bench's load: its latencies, and CPU
    seconds by role."""
    env = {"FLOOR_RAILS": str(rails_file), "FLOOR_DATABASE": url.replace("postgresql+psycopg://", "postgresql://"),
           "FLOOR_MERCHANT": str(merchant), "FLOOR_GROUP": str(group)}
    return _serve("minimal_app", env, args, merchant, url.rsplit("/", 1)[1], simulator)


def _print_minimal(name: str, result: dict[str, Any]) -> None:
    samples = sorted(result["samples"])
    p50 = statistics.median(samples) * 1000
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000
    per = {role: result["cpu"][role] * 1000 / len(samples) for role in ("api", "pg", "rail", "load")}
    print(f"{name:<44}{len(samples) / result['elapsed']:>8.0f}{sum(per.values()):>10.2f}  "
          f"(api {per['api']:.2f}, pg {per['pg']:.2f}, rail {per['rail']:.2f}, load {per['load']:.2f}); "
          f"p50 {p50:.0f} ms, p99 {p99:.0f} ms")


# -- the whole -----------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers of the HTTP part")
    parser.add_argument("--group", type=int, default=8,
                        help="sales whose outcomes share a transaction in the grouped database variant")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--pg-host", default=os.environ.get("SETTLEMENT_TEST_PG_HOST", "127.0.0.1"))
    parser.add_argument("--pg-port", default=os.environ.get("SETTLEMENT_TEST_PG_PORT", "5432"))
    parser.add_argument("--pg-user", default=os.environ.get("SETTLEMENT_TEST_PG_USER", "postgres"))
    args = parser.parse_args()
    if not Path("/proc/stat").exists():
        raise SystemExit("this bench reads CPU time from /proc (Linux)")

    cores = os.cpu_count() or 1
    print(f"{args.clients} clients, {args.seconds:g} s per part, {cores} CPUs; "
          f"load average {os.getloadavg()[0]:.1f} before the run")
    print(f"{'part':<44}{'per s':>8}   CPU ms per sale")
    url = _fresh_database(args.pg_host, args.pg_port, args.pg_user, "settlement_bench_floor")
    upgrade(url)
    _, merchant, _ = _setup(url)
    _open_sale_accounts(url)
    database = database_parts(url, merchant, args.clients, args.seconds, args.group)
    _verify_ledger(url)
    for name, (sales, elapsed, cpu) in database.items():
        print(f"{'database: ' + name:<44}{sales / elapsed:>8.0f}{cpu:>10.2f}  PostgreSQL")

    work = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    rails_file = work / "rails.json"
    settlement = str(Path(sys.executable).with_name("settlement"))
    simulator = subprocess.Popen([settlement, "payments", "simulate", "--rails", "mir", "--config-out",
                                  str(rails_file)], stdout=subprocess.DEVNULL)
    try:
        _wait_for(rails_file.exists, "the Mir simulator")
        sales, elapsed, simulated, client = rail_part(rails_file, simulator.pid, args.clients, args.seconds)
        print(f"{'rail: Mir sale, simulator':<44}{sales / elapsed:>8.0f}{simulated:>10.2f}")
        print(f"{'rail: Mir sale, client':<44}{'':>8}{client:>10.2f}")

        requests, elapsed, server, load = http_part(args)
        print(f"{'http: bare endpoint, server':<44}{requests / elapsed:>8.0f}{server:>10.2f}")
        print(f"{'http: load generator':<44}{'':>8}{load:>10.2f}")

        minimal = {size: minimal_part(url, merchant, rails_file, simulator.pid, args, size)
                   for size in (1, args.group)}
    finally:
        simulator.send_signal(signal.SIGINT)
        simulator.wait(10)
    _verify_ledger(url)

    floor = database["the sale"][2] + simulated + client + server + load
    grouped = database[f"the sale, {args.group} outcomes per transaction"][2] + simulated + client + server + load
    print(f"{'floor (sum of the sale, rail and http)':<44}{'':>8}{floor:>10.2f}")
    print(f"at most {cores * 1000 / floor:.0f} sales/s on {cores} CPUs busy with nothing else, "
          f"before the API's own code runs")
    print(f"{f'floor with {args.group} outcomes per transaction':<44}{'':>8}{grouped:>10.2f}")
    print(f"at most {cores * 1000 / grouped:.0f} sales/s so, before the API's own code runs")
    print("a whole sale over HTTP by the least code (same load generator):")
    _print_minimal("minimal sale endpoint", minimal[1])
    _print_minimal(f"minimal sale endpoint, outcomes grouped by {args.group}", minimal[args.group])


if __name__ == "__main__":
    main()
