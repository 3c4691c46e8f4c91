"""HTTP API throughput: payments created and captured, and balance reads.

    python bench/api.py                      # defaults: 2 server workers, pool 20, 32 clients, 15 s per scenario
    python bench/api.py --workers 2 --pool-size 20 --clients 32 --seconds 20

What runs (all on this machine, on loopback):

* a fresh PostgreSQL database, migrated;
* the Mir rail simulator (``settlement payments simulate``), its own process;
* ``settlement serve --workers N``: the API under uvicorn;
* the load generator, its own process: ``--clients`` concurrent keep-alive HTTP/1.1
  connections, each sending its next request as soon as the previous answer arrived.

Scenarios, one after the other:

* ``sale``: ``POST /v1/payments`` with ``capture_method=automatic`` (one rail
  operation authorizes and captures; the ledger books the capture and the split);
* ``auth+capture``: ``POST /v1/payments`` (manual) then ``POST .../capture``
  (two requests, two rail operations: a hold, then its post and the split);
* ``balance``: ``GET /v1/accounts/{id}/balance`` of a seller's payable.

Every money-moving request carries its own Idempotency-Key. Afterwards the ledger is
checked: each currency balances, and the seller's payable equals what the captured
payments say it should. Latencies are measured by the client from sending a request
to reading the whole answer.

The machine's other work skews every figure, so each scenario also prints the CPU
time it cost per request, read from /proc: the API workers (``api``), the PostgreSQL
backends serving the bench database (``pg``), the simulator (``rail``), the load
generator (``load``), and what the rest of the machine used meanwhile (``other``, as
a share of all cores). CPU per request does not depend on what else runs; requests
per second does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from settlement.auth.service import create_key  # noqa: E402 - after the path setup above
from settlement.db import make_engine, make_session_factory, unit_of_work  # noqa: E402
from settlement.db.migrate import upgrade  # noqa: E402

PAN = "2200000000000004"


# -- the load generator (its own process) ------------------------------------------------


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, method: str, path: str,
                   headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode() + body)
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value.strip())
    return status, await reader.readexactly(length)


async def _client(port: int, scenario: str, auth: str, merchant_id: int, account_id: int, deadline: float,
                  samples: list[float], errors: dict[int, int], payments: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    base = {"Authorization": f"Bearer {auth}", "Content-Type": "application/json"}
    try:
        while time.perf_counter() < deadline:
            if scenario == "balance":
                started = time.perf_counter()
                status, _ = await _request(reader, writer, "GET", f"/v1/accounts/{account_id}/balance", base, b"")
                samples.append(time.perf_counter() - started)
                if status != 200:
                    errors[status] = errors.get(status, 0) + 1
                continue
            manual = scenario == "auth+capture"
            body = json.dumps({"amount": "1234.56", "currency": "RUB", "merchant_id": merchant_id, "rail": "mir",
                               "payment_method": {"type": "card", "pan": PAN, "expiry": "3112"},
                               "capture_method": "manual" if manual else "automatic"}).encode()
            started = time.perf_counter()
            status, answer = await _request(reader, writer, "POST", "/v1/payments",
                                            {**base, "Idempotency-Key": uuid.uuid4().hex}, body)
            samples.append(time.perf_counter() - started)
            if status != 201:
                errors[status] = errors.get(status, 0) + 1
                continue
            if manual:
                payment_id = json.loads(answer)["id"]
                started = time.perf_counter()
                status, answer = await _request(reader, writer, "POST", f"/v1/payments/{payment_id}/capture",
                                                {**base, "Idempotency-Key": uuid.uuid4().hex}, b"{}")
                samples.append(time.perf_counter() - started)
                if status != 200:
                    errors[status] = errors.get(status, 0) + 1
                    continue
            payments.append(1)
    finally:
        writer.close()


def _load(port: int, scenario: str, auth: str, merchant_id: int, account_id: int, clients: int, seconds: float,
          out: Any) -> None:
    out.send("ready")  # imports done: what this process spends from here on is the load
    samples: list[float] = []
    errors: dict[int, int] = {}
    payments: list[int] = []

    async def main() -> float:
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(_client(port, scenario, auth, merchant_id, account_id, deadline, samples, errors,
                                       payments) for _ in range(clients)))
        return time.perf_counter() - started

    elapsed = asyncio.run(main())
    out.send({"samples": samples, "errors": errors, "payments": len(payments), "elapsed": elapsed})


def run_scenario(port: int, scenario: str, auth: str, merchant_id: int, account_id: int, clients: int,
                 seconds: float, watch: CpuWatch | None = None) -> dict[str, Any]:
    receive, send = mp.get_context("spawn").Pipe(duplex=False)
    process = mp.get_context("spawn").Process(target=_load, args=(port, scenario, auth, merchant_id, account_id,
                                                                  clients, seconds, send))
    process.start()
    receive.recv()  # the load generator's start-up (its imports) is not counted
    before = watch.snapshot(process.pid) if watch else None
    result: dict[str, Any] = receive.recv()
    if watch is not None and before is not None:
        result["cpu"] = watch.since(before, process.pid)
    process.join()
    return result


# -- where the CPU goes (Linux /proc) ----------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class CpuWatch:
    """CPU seconds of the bench's processes, by role, between two snapshots."""

    def __init__(self, database: str, server: int, simulator: int) -> None:
        self.database, self.server, self.simulator = database, server, simulator

    @staticmethod
    def _stat(pid: int) -> tuple[int, float] | None:
        """(parent pid, CPU seconds) of a process, None if it is gone."""
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK

    @staticmethod
    def _machine() -> float:
        """CPU seconds the whole machine spent busy (all cores)."""
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return (sum(values[:8]) - values[3] - values[4]) / _TICK

    def snapshot(self, loader: int) -> dict[str, Any]:
        """CPU seconds per process of each role, and of the machine."""
        stats = {int(p): self._stat(int(p)) for p in os.listdir("/proc") if p.isdigit()}
        processes: dict[int, tuple[str, float]] = {}
        for pid, stat in stats.items():
            role = self._role(pid, stats, loader) if stat is not None else None
            if role is not None and stat is not None:
                processes[pid] = (role, stat[1])
        return {"processes": processes, "machine": self._machine(), "wall": time.perf_counter()}

    def _role(self, pid: int, stats: dict[int, tuple[int, float] | None], loader: int) -> str | None:
        if pid == loader:
            return "load"
        ancestor, hops = pid, 0
        while ancestor > 1 and hops < 4:
            if ancestor == self.server:
                return "api"
            if ancestor == self.simulator:
                return "rail"
            parent = stats.get(ancestor)
            ancestor, hops = (parent[0] if parent else 0), hops + 1
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return "pg" if command.startswith(b"postgres:") and f" {self.database} ".encode() in command else None

    def since(self, before: dict[str, Any], loader: int) -> dict[str, float]:
        """CPU seconds by role since ``before`` (a process gone meanwhile is not
        counted; PostgreSQL backends of the pool live as long as the run)."""
        after = self.snapshot(loader)
        spent = {"api": 0.0, "pg": 0.0, "rail": 0.0, "load": 0.0}
        for pid, (role, seconds) in after["processes"].items():
            spent[role] += seconds - before["processes"].get(pid, (role, 0.0))[1]
        ours = sum(spent.values())
        spent["other"] = max(after["machine"] - before["machine"] - ours, 0.0)
        spent["wall"] = after["wall"] - before["wall"]
        return spent


# -- the servers -------------------------------------------------------------------------


def _fresh_database(host: str, port: str, user: str, name: str) -> str:
    with psycopg.connect(host=host, port=port, user=user, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://{user}@{host}:{port}/{name}"


def _wait_for(check: Any, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not come up")


def _ready(port: int) -> bool:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _setup(url: str) -> tuple[str, int, int]:
    """An API key, a RUB seller, and its payable's account id."""
    from settlement.ledger import Ledger
    from settlement.payments.service.merchants import MerchantSpec, create_merchant

    factory = make_session_factory(make_engine(url))
    from decimal import Decimal

    with unit_of_work(factory) as session:
        key, _ = create_key(session, "bench", ["checkout"])
        merchant = create_merchant(session, MerchantSpec("bench seller", "RUB", Decimal("0.05")))
        account = Ledger(session).get_account(f"merchant:{merchant.id}:payable:RUB")
        return key, merchant.id, account.id


def _verify(url: str, merchant_id: int, captured: int) -> list[str]:
    """What is wrong with the ledger after the run (empty: nothing)."""
    problems = []
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        unbalanced = conn.execute("SELECT currency FROM ledger_postings GROUP BY currency, pending "
                                  "HAVING sum(CASE WHEN side = 'D' THEN amount ELSE -amount END) <> 0").fetchall()
        if unbalanced:
            problems.append(f"unbalanced currencies: {unbalanced}")
        count, seller = conn.execute("SELECT count(*), coalesce(sum(seller_captured), 0) FROM payments "
                                     "WHERE merchant_id = %s AND amount_captured > 0", (merchant_id,)).fetchone()
        payable = conn.execute("SELECT credits_posted - debits_posted FROM ledger_accounts WHERE code = %s",
                               (f"merchant:{merchant_id}:payable:RUB",)).fetchone()[0]
        if count != captured:
            problems.append(f"{captured} payments answered captured, the database has {count}")
        # 1234.56 RUB less its 5 % commission, floor(6172.8) = 6172 kopecks: 1172.84 RUB to the seller.
        if payable != seller or seller != count * 117284:
            problems.append(f"payable {payable}, captured seller shares {seller}, expected {count} x 1172.84")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--port", type=int, default=8765)
    # Enough connections per worker for every request it takes at once (32 clients over
    # the workers): a smaller pool opens and closes overflow connections all the time.
    parser.add_argument("--pool-size", type=int, default=20,
                        help="database connections per API worker (SETTLEMENT_DATABASE_POOL_SIZE)")
    parser.add_argument("--scenarios", default="sale,auth+capture,balance")
    parser.add_argument("--pg-host", default=os.environ.get("SETTLEMENT_TEST_PG_HOST", "127.0.0.1"))
    parser.add_argument("--pg-port", default=os.environ.get("SETTLEMENT_TEST_PG_PORT", "5432"))
    parser.add_argument("--pg-user", default=os.environ.get("SETTLEMENT_TEST_PG_USER", "postgres"))
    args = parser.parse_args()

    url = _fresh_database(args.pg_host, args.pg_port, args.pg_user, "settlement_bench_api")
    upgrade(url)
    auth, merchant_id, account_id = _setup(url)
    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    rails_file = work / "rails.json"
    settlement = str(Path(sys.executable).with_name("settlement"))
    env = {**os.environ, "SETTLEMENT_DATABASE_URL": url, "SETTLEMENT_RAILS_CONFIG_FILE": str(rails_file),
           "SETTLEMENT_DATABASE_POOL_SIZE": str(args.pool_size), "SETTLEMENT_BROKER_URL": ""}
    simulator = subprocess.Popen([settlement, "payments", "simulate", "--rails", "mir", "--config-out",
                                  str(rails_file)], env=env, stdout=subprocess.DEVNULL)
    server = None
    try:
        _wait_for(rails_file.exists, "the Mir simulator")
        server = subprocess.Popen([settlement, "serve", "--workers", str(args.workers), "--port", str(args.port)],
                                  env=env)
        _wait_for(lambda: _ready(args.port), "the API")
        run_scenario(args.port, "sale", auth, merchant_id, account_id, args.clients, 2)  # warm-up
        watch = CpuWatch(url.rsplit("/", 1)[1], server.pid, simulator.pid) if Path("/proc/stat").exists() else None
        print(f"{args.workers} server workers, {args.clients} clients, {args.seconds:g} s per scenario, "
              f"{os.cpu_count()} CPUs shared by PostgreSQL, the API, the simulator and the load generator; "
              f"load average {os.getloadavg()[0]:.1f} before the run")
        print(f"{'scenario':<14}{'requests':>10}{'req/s':>9}{'payments/s':>12}{'p50 ms':>9}{'p99 ms':>9}"
              f"{'errors':>8}   CPU ms per request: api    pg  rail  load  (other work)")
        captured = 0
        for scenario in args.scenarios.split(","):
            result = run_scenario(args.port, scenario, auth, merchant_id, account_id, args.clients, args.seconds,
                                  watch)
            samples = sorted(result["samples"])
            elapsed = result["elapsed"]
            p50 = statistics.median(samples) * 1000 if samples else 0
            p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000 if samples else 0
            rate = f"{result['payments'] / elapsed:.0f}" if scenario != "balance" else "-"
            errors = sum(result["errors"].values())
            print(f"{scenario:<14}{len(samples):>10}{len(samples) / elapsed:>9.0f}{rate:>12}{p50:>9.1f}{p99:>9.1f}"
                  f"{errors:>8}" + _cpu_columns(result.get("cpu"), len(samples))
                  + (f"  {result['errors']}" if errors else ""))
            captured += result["payments"]
        problems = _verify(url, merchant_id, captured + _warm_up_payments(url, merchant_id, captured))
        print("ledger check: " + ("ok" if not problems else "; ".join(problems)))
    finally:
        for process in (server, simulator):
            if process is not None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()


def _cpu_columns(cpu: dict[str, float] | None, requests: int) -> str:
    if not cpu or not requests:
        return ""
    per = {role: cpu[role] * 1000 / requests for role in ("api", "pg", "rail", "load")}
    other = cpu["other"] / max(cpu["wall"], 1e-9) / (os.cpu_count() or 1) * 100
    return (f"{'':>22}{per['api']:>5.2f}{per['pg']:>6.2f}{per['rail']:>6.2f}{per['load']:>6.2f}"
            f"  ({other:.0f} % of the CPUs)")


def _warm_up_payments(url: str, merchant_id: int, measured: int) -> int:
    """Payments captured during the warm-up (not measured, but in the ledger)."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        total = conn.execute("SELECT count(*) FROM payments WHERE merchant_id = %s AND amount_captured > 0",
                             (merchant_id,)).fetchone()[0]
    return int(total) - measured


if __name__ == "__main__":
    main()
