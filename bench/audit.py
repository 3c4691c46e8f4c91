"""Journal sealing, auditor export and offline verification speed and memory.

    python bench/audit.py                       # 1,000,000 postings in a fresh local database
    python bench/audit.py --postings 200000
    python bench/audit.py --reuse               # the ledger of the previous run, journal rebuilt
    SETTLEMENT_DATABASE_URL=postgresql+psycopg://user@host/db python bench/audit.py

The ledger is filled with ``Ledger.post_batch`` (the fast path): entries of two
postings among 1,000 accounts in RUB and CNY, in batches of 5,000, by two
processes. Then each phase runs in a fresh process, so the peak resident memory
printed is that phase's own:

* seal: every entry sealed (canonical bytes, leaf and chain hashes, subtree hashes);
* export: the whole journal as CSV (journal, trial balance, statements, manifest);
* verify: that export checked offline with the public key;
* the same export and verify for a tenth of the period, to show memory does not
  grow with the size of the export;
* verify --database (information only).

Targets: sealing >= 50,000 entries/s; export and offline verify >= 100,000
postings/s each, for the whole journal; memory flat in the size of the export (the
last line compares the peaks of the whole export and of the tenth; the tenth's
rates are printed but carry fixed costs, such as the statements' opening and
closing lines for every account, so they have no target). With SETTLEMENT_DATABASE_URL the database must be empty and
migrated or absent (it is migrated); without it a database ``settlement_bench_audit``
is created on the local server (dropping any previous one).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from settlement.config import Settings
from settlement.db import make_engine, make_session_factory, unit_of_work
from settlement.db.migrate import upgrade
from settlement.ledger import AccountSpec, AccountType, EntrySpec, Ledger, credit, debit

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASE = "settlement_bench_audit"
ACCOUNTS = 1_000
BATCH = 5_000
CURRENCIES = ("RUB", "CNY")


def database_url(reuse: bool) -> str:
    url = os.environ.get("SETTLEMENT_DATABASE_URL")
    if url:
        return url
    if reuse:
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{DATABASE}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{DATABASE}"


def _fill(url: str, worker: int, workers: int, entries: int) -> None:
    """Post this worker's share of entries among its own accounts (no lock waits)."""
    factory = make_session_factory(make_engine(url, pool_size=1))
    mine = [n for n in range(ACCOUNTS) if n % workers == worker]
    posted = 0
    batch_no = 0
    while posted < entries:
        size = min(BATCH, entries - posted)
        specs = []
        for i in range(size):
            n = posted + i
            currency = CURRENCIES[n % 2]
            source = mine[(n * 7) % len(mine)]
            target = mine[(n * 7 + 3) % len(mine)]
            amount = 100 + (n * 7919) % 5_000_000
            specs.append(EntrySpec(f"bench:{worker}:{n}", [debit(f"acct:{source}:{currency}", amount, currency),
                                                          credit(f"acct:{target}:{currency}", amount, currency)],
                                   kind="payment.capture", description=f"order {worker}-{n}",
                                   metadata={"order": n} if n % 10 == 0 else {}))
        with unit_of_work(factory) as session:
            Ledger(session).post_batch(specs)
        posted += size
        batch_no += 1


def fill(url: str, entries: int) -> float:
    upgrade(url)
    factory = make_session_factory(make_engine(url))
    with unit_of_work(factory) as session:
        ledger = Ledger(session)
        for n in range(ACCOUNTS):
            for currency in CURRENCIES:
                kind = AccountType.ASSET if n % 2 else AccountType.LIABILITY
                ledger.create_account(AccountSpec(f"acct:{n}:{currency}", currency, kind))
    began = time.perf_counter()
    workers = 2
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_fill, args=(url, w, workers, entries // workers + (w < entries % workers)))
             for w in range(workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise SystemExit("filling the ledger failed")
    return time.perf_counter() - began


def drop_journal(url: str) -> int:
    """Empty the journal tables of a bench database (bypassing their append-only
    triggers: this is the bench's own scratch database) and count its entries."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        for table in ("journal_checkpoints", "journal_nodes", "journal_leaves"):
            conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            conn.execute(f"TRUNCATE {table}")
            conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        row = conn.execute("SELECT count(*) FROM ledger_entries").fetchone()
        conn.execute("VACUUM ANALYZE")
    return int(row[0]) if row else 0


def child(phase: str, args: dict[str, Any]) -> dict[str, Any]:
    """One phase in this (fresh) process; returns count, seconds, peak MB."""
    settings = Settings(database_url=args["url"], journal_signing_key_file=Path(args["key"]),
                        data_dir=Path(args["scratch"]))
    factory = make_session_factory(make_engine(args["url"]))
    began = time.perf_counter()
    cpu = time.process_time()
    count: int
    if phase == "seal":
        from settlement.journal.jobs import seal_pending

        count = seal_pending(factory, batch=settings.journal_seal_batch).sealed
    elif phase == "checkpoint":
        from settlement.journal.jobs import checkpoint_now
        from settlement.journal.keys import load_signing_key

        latest = checkpoint_now(factory, load_signing_key(settings), batch=settings.journal_seal_batch)
        count = latest.tree_size if latest else 0
    elif phase == "export":
        from settlement.exports.service import ExportRequest, export

        start = dt.datetime.fromisoformat(args["from"]) if args.get("from") else None
        end = dt.datetime.fromisoformat(args["to"]) if args.get("to") else None
        result = export(factory, settings, ExportRequest("csv", start, end), Path(args["out"]))
        count = result.postings
    elif phase == "verify":
        from settlement.exports.verify import verify_path
        from settlement.journal.keys import read_public_key

        report = verify_path(Path(args["out"]), read_public_key(Path(args["key"] + ".pub"), settings.journal_origin))
        if not report.ok:
            raise SystemExit("verification failed: " + "; ".join(str(f) for f in report.failures[:5]))
        count = report.postings
    elif phase == "dbverify":
        from settlement.exports.dbverify import verify_database
        from settlement.journal.keys import load_signing_key

        db_report = verify_database(factory, load_signing_key(settings).public)
        if not db_report.ok:
            raise SystemExit("database verification failed: " + "; ".join(str(f) for f in db_report.findings[:5]))
        count = db_report.checked
    else:
        raise SystemExit(f"unknown phase {phase}")
    seconds = time.perf_counter() - began
    return {"count": count, "seconds": seconds, "cpu": time.process_time() - cpu,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run(phase: str, args: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--child", phase, json.dumps(args)], check=False,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"phase {phase} failed:\n{done.stderr}{done.stdout}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postings", type=int, default=1_000_000, help="postings to generate (2 per entry)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the previous run's ledger; only its journal is dropped and rebuilt")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        print(json.dumps(child(options.child[0], json.loads(options.child[1]))))
        return
    url = database_url(options.reuse)
    entries = options.postings // 2
    if options.reuse:
        entries = drop_journal(url)
        print(f"reusing the ledger of {entries:,} entries; its journal dropped", flush=True)
    else:
        print(f"filling the ledger: {entries:,} entries, {2 * entries:,} postings with Ledger.post_batch ...",
              flush=True)
        filled = fill(url, entries)
        print(f"  {filled:.1f} s ({entries / filled:,.0f} entries/s)", flush=True)
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        # As autovacuum does after a bulk load (PostgreSQL 13 and later vacuum tables
        # after inserts too): statistics, and hint bits and the visibility map set, so
        # the first phase does not pay for setting them on every page it reads; then
        # a checkpoint, so it does not share the machine with the load's writes.
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")
    scratch = Path(tempfile.mkdtemp(prefix="settlement-bench-audit-"))
    try:
        from settlement.journal.keys import keygen

        keygen(scratch / "journal.pem")
        base = {"url": url, "key": str(scratch / "journal.pem"), "scratch": str(scratch)}
        factory = make_session_factory(make_engine(url))
        with factory() as session:
            stamps = session.execute(text(
                "SELECT recorded_at FROM ledger_entries ORDER BY id OFFSET :a LIMIT 1"), {"a": entries * 45 // 100}
            ).scalar_one(), session.execute(text(
                "SELECT recorded_at FROM ledger_entries ORDER BY id OFFSET :a LIMIT 1"), {"a": entries * 55 // 100}
            ).scalar_one()
        rows = [
            ("seal", "seal", base, "entries", 50_000),
            ("checkpoint", "checkpoint", base, "entries", None),
            ("export (all, CSV)", "export", {**base, "out": str(scratch / "all")}, "postings", 100_000),
            ("verify (all, offline)", "verify", {**base, "out": str(scratch / "all")}, "postings", 100_000),
            ("export (1/10 period)", "export", {**base, "out": str(scratch / "tenth"), "from": stamps[0].isoformat(),
                                                "to": stamps[1].isoformat()}, "postings", None),
            ("verify (1/10 period)", "verify", {**base, "out": str(scratch / "tenth")}, "postings", None),
            ("verify --database", "dbverify", base, "entries", None),
        ]
        print(f"\n{'phase':<24} {'count':>10} {'seconds':>8} {'per second':>11} {'target':>12} {'peak MB':>8} "
              f"{'our CPU s':>9}")
        peaks: dict[str, float] = {}
        for label, phase, args, unit, target in rows:
            result = run(phase, args)
            peaks[label] = result["peak_mb"]
            if phase == "seal":
                with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
                    conn.execute("VACUUM ANALYZE journal_leaves")  # as autovacuum would, after a bulk load
            rate = result["count"] / result["seconds"] if result["seconds"] else 0.0
            mark = "" if target is None else (f"{target:>9,}" + (" ok" if rate >= target else " MISSED"))
            print(f"{label:<24} {result['count']:>10,} {result['seconds']:>8.2f} {rate:>11,.0f} {mark:<12} "
                  f"{result['peak_mb']:>8.0f} {result['cpu']:>9.2f}  ({unit})", flush=True)
        size = sum(p.stat().st_size for p in (scratch / "all").iterdir())
        print(f"\nfull export: {size / 2**20:.0f} MiB on disk")
        for what in ("export", "verify"):
            whole, tenth = peaks[f"{what} (all, {'CSV' if what == 'export' else 'offline'})"], \
                peaks[f"{what} (1/10 period)"]
            # Flat: ten times the postings may not cost more than a quarter more memory.
            verdict = "flat" if whole <= tenth * 1.25 else "GROWS with the export"
            print(f"{what} peak memory: {tenth:.0f} MB for a tenth, {whole:.0f} MB for all: {verdict}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
