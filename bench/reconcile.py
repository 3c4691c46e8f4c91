"""Reconciliation throughput and memory on PostgreSQL (and on the embedded SQLite).

    python bench/reconcile.py                       # 1,000,000 payments, a fresh database on the local server
    python bench/reconcile.py --payments 200000     # smaller
    SETTLEMENT_BENCH_ADMIN_URL=postgresql://user@host/postgres python bench/reconcile.py
    python bench/reconcile.py --sqlite              # 100,000 payments in a SQLite file, the embedded path

What it does:

1. generates ``--payments`` captured Mir payments: their expectations with the bulk
   path (``expect_many``: COPY) and the ledger state of the captures with
   ``Ledger.post_batch`` (one entry per 10,000 captures: debit the rail's
   receivable, credit payments clearing; the ledger's own per-entry throughput is
   ``bench/ledger.py``'s subject);
2. writes the matching settlement file with the rail's own writer
   (``adapters.mir.register.write_register``, streamed), with 1 % of the payments
   given a discrepancy (missing, duplicate, fee differs, amount differs, late,
   an extra refund, a chargeback, an unknown payment);
3. reconciles and books it in a fresh process (so its peak memory is its own), as
   ``settlement reconcile mir FILE`` does: register (SHA-256), load (parse + COPY,
   checkpointed chunks), match (set-based SQL), book (one entry per chunk through
   ``Ledger.post_batch``); the parser alone is timed too;
4. checks the outcome counts against the injected discrepancies and the ledger
   against the file (receivable cleared for every booked payment, fees and bank
   clearing equal to the file's);
5. times DuckDB joining the same two tables on the reference key, the floor.

It prints records/s per phase (generation included), the wall-clock of each size's
whole run (fresh database, generation, reconciliation, checks) and of the bench, and
the peak RSS of its own process and of every process it starts, also for a file a
tenth the size; then a verdict against the targets: the whole run at full size under
120 s, every process's peak under 1 GiB, and memory flat in the file size (the
reconciling process's peak at full size within 25 % of its peak at a tenth).
``--sqlite`` runs the same on a SQLite file (the embedded default's path: prepared
inserts, the same rules' statements), sized for embedded volumes, without the DuckDB
floor and without the targets (they are PostgreSQL's).
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import os
import random
import resource
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.base import RecordType
from adapters.mir.files import parse_register
from adapters.mir.register import MirSettlementRecord, PackedRecord, write_register
from settlement.config import Settings
from settlement.db import make_engine, make_session_factory, unit_of_work
from settlement.db.migrate import upgrade
from settlement.ledger import EntrySpec, Ledger, credit, debit
from settlement.reconciliation import runner
from settlement.reconciliation.expectations import ExpectationSpec, expect_many
from settlement.reconciliation.models import FileKind
from settlement.reconciliation.service import files, runs

RAIL, CURRENCY = "mir", "RUB"
DAY = dt.date(2026, 11, 18)          # a Wednesday; settled Thursday
SETTLED = dt.date(2026, 11, 19)
FEE = Decimal("0.015")
FEE_PER_MILLE = 15
KINDS = ("missing", "duplicate", "fee", "amount", "late", "refund", "chargeback", "unknown")
CAPTURES_PER_ENTRY = 10_000
#: Targets at full size (PostgreSQL): the whole run, every process's peak RSS, and how
#: much more the reconciling process may hold for a file ten times larger.
TARGET_SECONDS = 120.0
TARGET_PEAK_MIB = 1024.0
FLAT_RATIO = 1.25


def _fresh_database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0]
    return f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{name}"


def _amount(n: int) -> int:
    return 1_000 + (n * 7_919) % 99_000


def _fee(gross: int) -> int:
    """``FEE`` of a positive ``gross``, rounded half up: in integers, as a million of
    them are worked out here (the same as the Decimal rounding, checked below)."""
    return (gross * FEE_PER_MILLE + 500) // 1000


assert all(_fee(g) == int((Decimal(g) * FEE).quantize(Decimal(1), rounding="ROUND_HALF_UP"))
           for g in (1_000, 1_033, 1_034, 33_300, 33_366, 99_999))


def _record(record_type: RecordType, rail_reference: str, reference: str, gross: int, fee: int,
            rrn: str) -> MirSettlementRecord:
    """A register record built as the parser builds them (one tuple, see
    ``adapters.packed``): a million frozen dataclasses cost seconds."""
    record: MirSettlementRecord = PackedRecord.pack((
        RAIL, 0, record_type, rail_reference, reference, gross, fee, gross - fee, CURRENCY, DAY, SETTLED, rrn, "",
        None, None, None, "", "", ""))
    return record


def plan(count: int, seed: int) -> dict[int, str]:
    """Payment number -> its discrepancy, for 1 % of the payments."""
    rng = random.Random(seed)
    return {n: KINDS[rng.randrange(len(KINDS))] for n in range(count) if rng.random() < 0.01}


def expectations(count: int) -> Iterator[ExpectationSpec]:
    for n in range(count):
        gross = _amount(n)
        yield ExpectationSpec(RAIL, "payment", f"P{n:09d}", f"{n:012d}", gross, CURRENCY, DAY,
                              rrn=f"{n + 10**11:012d}", expected_fee=_fee(gross))


def records(count: int, discrepancies: dict[int, str]) -> Iterator[MirSettlementRecord]:
    """The rail's file for the payments, with the planned discrepancies."""
    payment = RecordType.PAYMENT
    for n in range(count):
        gross = _amount(n)
        fee = _fee(gross)
        kind = discrepancies.get(n)
        rail_reference, reference, rrn = f"{n:012d}", f"P{n:09d}", f"{n + 10**11:012d}"
        if kind in ("missing", "late"):
            continue
        if kind == "fee":
            fee += 1 + n % 50
        elif kind == "amount":
            gross += 1 + n % 400
        base = _record(payment, rail_reference, reference, gross, fee, rrn)
        yield base
        if kind == "duplicate":
            yield base
        elif kind in ("refund", "chargeback"):
            record_type = RecordType.REFUND if kind == "refund" else RecordType.CHARGEBACK
            yield _record(record_type, f"{n:011d}{kind[0].upper()}", reference, -gross, 0, f"{n + 2 * 10**11:012d}")
        elif kind == "unknown":
            yield _record(payment, f"U{n:011d}", f"X{n:09d}", 5_000, 75, f"{n + 3 * 10**11:012d}")


def expected_outcomes(count: int, discrepancies: dict[int, str]) -> dict[str, int]:
    kinds = Counter(discrepancies.values())
    return {
        "matched": count - kinds["missing"] - kinds["late"] - kinds["fee"] - kinds["amount"],
        "fee_variance": kinds["fee"], "fx_variance": 0, "late": 0, "amount_mismatch": kinds["amount"],
        "missing_in_file": 0, "unexpected_in_file": kinds["refund"] + kinds["chargeback"] + kinds["unknown"],
        "duplicate": kinds["duplicate"],
    }


def generate(url: str, settings: Settings, count: int, seed: int, path: Path) -> dict[str, float]:
    times: dict[str, float] = {}
    factory = make_session_factory(make_engine(url))
    began = time.perf_counter()
    with unit_of_work(factory) as session:
        expect_many(session, expectations(count), settings=settings)
    times["expectations"] = time.perf_counter() - began
    began = time.perf_counter()
    receivable, clearing = f"rail:{RAIL}:receivable:{CURRENCY}", f"payments:clearing:{CURRENCY}"
    with unit_of_work(factory) as session:
        from settlement.reconciliation import accounts

        accounts.ensure(session, [receivable, clearing])
    for start in range(0, count, CAPTURES_PER_ENTRY * 10):
        specs = []
        for first in range(start, min(count, start + CAPTURES_PER_ENTRY * 10), CAPTURES_PER_ENTRY):
            total = sum(_amount(n) for n in range(first, min(count, first + CAPTURES_PER_ENTRY)))
            specs.append(EntrySpec(f"bench:captures:{first}", [debit(receivable, total, CURRENCY),
                                                                credit(clearing, total, CURRENCY)],
                                   kind="payment.capture", description=f"captures {first}..."))
        with unit_of_work(factory) as session:
            Ledger(session).post_batch(specs)
    times["ledger"] = time.perf_counter() - began
    began = time.perf_counter()
    with path.open("wb") as out:
        times["lines"] = write_register(out, records(count, plan(count, seed)))
    times["file"] = time.perf_counter() - began
    factory.kw["bind"].dispose()
    return times


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class ChildPeaks:
    """The peak RSS (``VmHWM``) of every process descending from this one, read from
    ``/proc`` while they run (a peak is never lowered, so the last reading before a
    process ends is its peak up to then; the reconciling process reports its own exact
    figure at its end)."""

    def __init__(self, interval: float = 0.1) -> None:  # float-ok: seconds
        self.interval = interval
        self.peaks: dict[int, tuple[str, float]] = {}
        self.labels: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="child-peaks", daemon=True)

    def __enter__(self) -> ChildPeaks:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def name(self, pid: int, label: str) -> None:
        self.labels[pid] = label

    def note(self, pid: int, mib: float) -> None:
        label, seen = self.peaks.get(pid, (self.labels.get(pid, str(pid)), 0.0))
        self.peaks[pid] = (label, max(seen, mib))

    def _watch(self) -> None:
        me = os.getpid()
        while not self._stop.wait(self.interval):
            for pid in _descendants(me):
                mib = _hwm_mib(pid)
                if mib is not None:
                    label = self.labels.get(pid) or self.peaks.get(pid, ("", 0.0))[0] or _command(pid)
                    self.peaks[pid] = (label, max(mib, self.peaks.get(pid, ("", 0.0))[1]))


def _descendants(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                # The command may hold spaces and parentheses: the fields follow the last ")".
                ppid = int(stat.read().rpartition(b")")[2].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _hwm_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            words = cmdline.read().split(b"\0")
    except OSError:
        return str(pid)
    command = " ".join(w.decode(errors="replace") for w in words if w)
    if "resource_tracker" in command:
        return "multiprocessing resource tracker"
    return command[:60] or str(pid)


def reconcile(url: str, data_dir: str, path: str, results: Any) -> None:
    """In a process of its own: parse alone, then register, load, match and book."""
    settings = Settings(database_url=url, data_dir=Path(data_dir))
    factory = make_session_factory(make_engine(url))
    out: dict[str, Any] = {}
    began = time.perf_counter()
    with open(path, "rb") as stream:
        lines = sum(1 for _ in parse_register(stream))
    out["parse"] = (time.perf_counter() - began, lines)
    began = time.perf_counter()
    with unit_of_work(factory) as session, open(path, "rb") as source:
        file = files.register_file(session, settings, kind=FileKind.SETTLEMENT, rail=RAIL, source=source,
                                   filename=Path(path).name, actor="bench").file
        run_id = runs.create_run(session, file_id=file.id, dry_run=False, actor="bench").id
    out["register"] = time.perf_counter() - began
    marks: dict[str, float] = {}

    def progress(step: str, _done: int, _total: int) -> None:
        marks.setdefault(step, time.perf_counter())

    began = time.perf_counter()
    summary = runner.execute(factory, settings, run_id, progress=progress)
    ended = time.perf_counter()
    out["load"] = marks["match"] - began
    out["match"] = marks["book"] - marks["match"]
    out["book"] = ended - marks["book"]
    out["summary"] = summary
    out["run_id"] = run_id
    out["peak_mib"] = _peak_mib()
    factory.kw["bind"].dispose()
    results.put(out)


def run_reconcile(url: str, data_dir: Path, path: Path, watch: ChildPeaks, label: str) -> dict[str, Any]:
    context = mp.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=reconcile, args=(url, str(data_dir), str(path), results))
    process.start()
    assert process.pid is not None
    watch.name(process.pid, label)
    found: dict[str, Any] = results.get()
    process.join()
    watch.note(process.pid, found["peak_mib"])
    return found


def verify(url: str, run_id: int, count: int, discrepancies: dict[int, str], summary: dict[str, Any]) -> None:
    wanted = expected_outcomes(count, discrepancies)
    assert summary["outcomes"] == wanted, f"outcomes {summary['outcomes']} != {wanted}"
    booked = [n for n in range(count) if discrepancies.get(n) in (None, "duplicate", "fee", "refund", "chargeback",
                                                                   "unknown")]
    fees = sum(_fee(_amount(n)) + (1 + n % 50 if discrepancies.get(n) == "fee" else 0) for n in booked)
    fees += sum(_fee(_amount(n)) + 1 + n % 50 for n, k in discrepancies.items() if k == "fee" and n not in booked)
    engine = make_engine(url)
    with engine.connect() as conn:
        balances: dict[str, int] = dict(conn.execute(
            text("SELECT code, debits_posted - credits_posted FROM ledger_accounts")).all())
        unbooked = sum(_amount(n) for n, k in discrepancies.items() if k in ("missing", "late", "amount"))
        assert balances[f"rail:{RAIL}:receivable:{CURRENCY}"] == unbooked, "receivable not cleared"
        assert balances[f"rail:{RAIL}:fees:{CURRENCY}"] == fees, "fees differ from the file's"
        assert balances[f"bank:clearing:{CURRENCY}"] == sum(_amount(n) for n in booked) - fees
        entries = conn.execute(text("SELECT count(*) FROM ledger_entries WHERE kind = 'reconciliation.settlement'")
                               ).scalar()
        chunks = conn.execute(text("SELECT count(*) FROM recon_bookings WHERE run_id = :r"), {"r": run_id}).scalar()
        assert entries == chunks, "an entry per booked chunk"
    engine.dispose()


def duckdb_floor(url: str, workdir: Path) -> tuple[float, float, int]:
    """Export both tables once, then time DuckDB joining them on the reference key."""
    import duckdb

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    exp_csv, items_csv = workdir / "expectations.csv", workdir / "items.csv"
    with psycopg.connect(plain) as conn, conn.cursor() as cur:
        for target, query in ((exp_csv, "SELECT reference, rail_reference, signed_amount FROM recon_expectations"),
                              (items_csv, "SELECT reference, rail_reference, gross FROM recon_file_items")):
            with target.open("wb") as out, cur.copy(f"COPY ({query}) TO STDOUT (FORMAT csv, HEADER)") as copy:
                for block in copy:
                    out.write(block)
    db = duckdb.connect()
    began = time.perf_counter()
    db.execute(f"CREATE TABLE e AS SELECT * FROM read_csv_auto('{exp_csv}')")
    db.execute(f"CREATE TABLE i AS SELECT * FROM read_csv_auto('{items_csv}')")
    loaded = time.perf_counter() - began
    began = time.perf_counter()
    row = db.execute("SELECT count(*) FROM i JOIN e ON e.rail_reference = i.rail_reference").fetchone()
    joined = time.perf_counter() - began
    db.close()
    return loaded, joined, int(row[0]) if row else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=None,
                        help="payments (default 1,000,000 on PostgreSQL, 100,000 with --sqlite)")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--no-small", action="store_true", help="skip the run on a file a tenth the size")
    parser.add_argument("--sqlite", action="store_true", help="on a SQLite file (the embedded default's path)")
    args = parser.parse_args()
    payments = args.payments or (100_000 if args.sqlite else 1_000_000)
    admin = os.environ.get("SETTLEMENT_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    print(f"reconciliation benchmark: {payments:,} payments, {'SQLite' if args.sqlite else 'PostgreSQL'}, "
          f"{os.cpu_count()} CPUs", flush=True)
    bench_began = time.perf_counter()
    sizes = [payments] if args.no_small else [max(1, payments // 10), payments]
    whole: dict[int, float] = {}
    reconciling: dict[int, float] = {}
    generating: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="recon-bench-") as work, ChildPeaks() as watch:
        workdir = Path(work)
        for count in sizes:
            began = time.perf_counter()
            url = (f"sqlite:///{workdir / f'bench-{count}.db'}" if args.sqlite
                   else _fresh_database(admin, f"settlement_bench_recon_{count}"))
            upgrade(url)
            prepared = time.perf_counter() - began
            settings = Settings(database_url=url, data_dir=workdir / "data")
            path = workdir / f"mir-{count}.csv"
            made = generate(url, settings, count, args.seed, path)
            generating[count] = _peak_mib()
            lines_written = int(made["lines"])
            generated = made["expectations"] + made["ledger"] + made["file"]
            print(f"\n{count:,} payments: database and migrations {prepared:.1f} s; generated in {generated:.1f} s "
                  f"({count / generated:,.0f} payments/s):", flush=True)
            print(f"  expectations {made['expectations']:6.1f} s  {count / made['expectations']:>10,.0f} records/s "
                  f"({'inserts' if args.sqlite else 'COPY'})")
            print(f"  captures     {made['ledger']:6.1f} s  {count / max(made['ledger'], 1e-9):>10,.0f} records/s "
                  f"(ledger state, post_batch)")
            print(f"  file         {made['file']:6.1f} s  {lines_written / made['file']:>10,.0f} lines/s "
                  f"({lines_written:,} lines, {path.stat().st_size / 2**20:.0f} MiB)", flush=True)
            found = run_reconcile(url, workdir / "data", path, watch, f"reconciling process ({count:,})")
            reconciling[count] = found["peak_mib"]
            parse_s, lines = found["parse"]
            total = found["load"] + found["match"] + found["book"]
            print(f"  parse  {lines:>10,} lines  {parse_s:6.1f} s  {lines / parse_s:>10,.0f} lines/s  (parser alone)")
            for phase in ("load", "match", "book"):
                print(f"  {phase:<6} {lines:>10,} lines  {found[phase]:6.1f} s  {lines / found[phase]:>10,.0f} "
                      "lines/s")
            print(f"  reconcile (register {found['register']:.1f} s + load + match + book): "
                  f"{found['register'] + total:.1f} s; peak RSS of the reconciling process "
                  f"{found['peak_mib']:.0f} MiB", flush=True)
            discrepancies = plan(count, args.seed)
            verify(url, found["run_id"], count, discrepancies, found["summary"])
            print(f"  verified: outcomes {found['summary']['outcomes']}; receivable cleared for every booked "
                  f"payment; fees and bank clearing equal the file's; one entry per chunk "
                  f"({found['summary']['entries']} entries)")
            whole[count] = time.perf_counter() - began
            print(f"  whole run: {whole[count]:.1f} s (database, generation, parse alone, reconciliation, checks); "
                  f"peak RSS of the bench process so far {_peak_mib():.0f} MiB", flush=True)
            if count == sizes[-1] and not args.sqlite:
                loaded, joined, pairs = duckdb_floor(url, workdir)
                print(f"  duckdb floor: join on rail_reference {joined:.2f} s ({pairs:,} pairs; loading the two "
                      f"tables from CSV {loaded:.1f} s)")
    bench_total = time.perf_counter() - bench_began
    print(f"\npeak RSS: bench process {_peak_mib():.0f} MiB (after generation: "
          + ", ".join(f"{generating[c]:.0f} MiB at {c:,}" for c in sizes) + ")")
    for pid, (label, mib) in sorted(watch.peaks.items()):
        print(f"  child {pid:>7}  {mib:6.0f} MiB  {label}")
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"  largest child reaped (getrusage): {children:.0f} MiB")
    print(f"bench total (every size and the floor): {bench_total:.1f} s")
    if not args.sqlite:
        _verdict(sizes, whole, reconciling, generating, max([_peak_mib(), children,
                                                             *(mib for _, mib in watch.peaks.values())]))


def _verdict(sizes: list[int], whole: dict[int, float], reconciling: dict[int, float],
             generating: dict[int, float], peak: float) -> None:
    full = sizes[-1]
    checks = [(f"whole run at {full:,} payments {whole[full]:.1f} s < {TARGET_SECONDS:.0f} s",
               whole[full] < TARGET_SECONDS),
              (f"largest peak RSS of any process {peak:.0f} MiB < {TARGET_PEAK_MIB:.0f} MiB", peak < TARGET_PEAK_MIB)]
    if len(sizes) > 1:
        small = sizes[0]
        ratio = reconciling[full] / reconciling[small]
        checks.append((f"flat: reconciling process {reconciling[full]:.0f} MiB at {full:,} against "
                       f"{reconciling[small]:.0f} MiB at {small:,} (x{ratio:.2f}, at most x{FLAT_RATIO})",
                       ratio <= FLAT_RATIO))
        grown = generating[full] / generating[small]
        checks.append((f"flat: bench process after generation {generating[full]:.0f} MiB at {full:,} against "
                       f"{generating[small]:.0f} MiB at {small:,} (x{grown:.2f}, at most x{FLAT_RATIO})",
                       grown <= FLAT_RATIO))
    else:
        checks.append(("flat: not measured (--no-small)", False))
    print("verdict: " + ("all targets met" if all(ok for _, ok in checks) else "TARGETS MISSED"))
    for label, ok in checks:
        print(f"  {'pass' if ok else 'FAIL'}  {label}")


if __name__ == "__main__":
    main()
