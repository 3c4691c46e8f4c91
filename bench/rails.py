"""Settlement-file and bank-statement parsing speed and memory.

    python bench/rails.py                 # 1,000,000 records per rail and statement
    python bench/rails.py --records 200000
    python bench/rails.py --rails "" --statements 1c

For each rail a file of N payment records is written with the rail's own writer
(the same code its simulator uses), then parsed with the rail's streaming parser in
a fresh process, so the peak resident memory printed is the parse's own. Targets:
at least 300,000 records/s for the CSV (Mir) and pipe (Alipay) files, 150,000
records/s for the fixed-width GBK (UnionPay ZM) file, peak memory under 200 MB.

Then the two bank statement formats, written here: a camt.053.001.08 statement of N
credit entries and a 1CClientBankExchange file (cp1251) of N lines (a payment order
is 20 lines, so N rounds up to whole orders), each parsed by
:func:`adapters.statements.parse_statement` in a fresh process. They have no speed
target; what matters is that memory does not grow with the file, so each is also
parsed at a tenth of the size and both peaks are printed ("base" is the child's
resident memory after its imports, before parsing). Their records/s counts
movements (a 1C payment order, a camt.053 entry).

Peak memory is the child's own high-water mark (``VmHWM``), not ``ru_maxrss``: on
Linux a spawned child's ``ru_maxrss`` starts at its parent's resident size, which
would hide any parse that stays below it.
"""

# The 1C data is Russian text: its Cyrillic letters that look Latin are meant.
# ruff: noqa: RUF001

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.base import RecordError, RecordType, SettlementRecord

SETTLED = dt.date(2026, 11, 20)
TRADED = dt.date(2026, 11, 19)


def records(rail: str, count: int) -> Iterator[SettlementRecord]:
    """``count`` distinct payment records, shaped as each rail's simulator makes them."""
    for n in range(count):
        gross = 1_000 + (n * 7919) % 5_000_000
        fee = gross * 15 // 1000
        if rail == "mir":
            yield SettlementRecord(rail, 0, RecordType.PAYMENT, f"{n:012d}", f"ord{n:010d}", gross, fee,
                                   gross - fee, "RUB", TRADED, SETTLED, rrn=f"{n + 1:012d}")
        elif rail == "unionpay":
            yield SettlementRecord(rail, 0, RecordType.PAYMENT, f"{n:021d}", f"ord{n:010d}", gross, fee,
                                   gross - fee, "CNY", TRADED, SETTLED, rrn=f"{n % 999999:06d}1119120000")
        else:
            # A cross-border trade priced in RUB, settled to us in CNY at the day's rate.
            rate = Decimal("0.081234")
            net = gross - fee
            yield SettlementRecord(rail, 0, RecordType.PAYMENT, f"2026111922001{n:015d}", f"ord{n:010d}", gross,
                                   fee, net, "RUB", TRADED, SETTLED, settlement_amount=net * 81234 // 1_000_000,
                                   settlement_currency="CNY", fx_rate=rate, status="L")


def write(rail: str, path: Path, count: int) -> None:
    with path.open("wb") as out:
        if rail == "mir":
            from adapters.mir.files import write_register

            write_register(out, records(rail, count))
        elif rail == "unionpay":
            from adapters.unionpay.files import write_zm

            write_zm(out, records(rail, count), settlement_date=SETTLED, mer_id="777290058110048")
        else:
            from adapters.alipay.files import write_settlement

            write_settlement(out, records(rail, count))


def _memory_mb(key: str) -> float:  # float-ok: megabytes
    """``VmHWM`` (peak) or ``VmRSS`` (now) of this process in MB, from /proc; where
    there is no /proc, ``ru_maxrss`` (which may include the parent's size at spawn)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def parse(rail: str, path: Path) -> dict[str, float]:  # float-ok: timings and megabytes
    """Parse ``path`` and report counts, seconds and peak RSS (run in a child process)."""
    if rail == "mir":
        from adapters.mir.files import parse_register as parser
    elif rail == "unionpay":
        from adapters.unionpay.files import parse_zm as parser  # type: ignore[assignment]
    else:
        from adapters.alipay.files import parse_settlement as parser  # type: ignore[assignment]
    good = bad = 0
    gross = 0
    began = time.perf_counter()
    with path.open("rb") as stream:
        for item in parser(stream):
            if isinstance(item, RecordError):
                bad += 1
            else:
                good += 1
                gross += item.gross
    elapsed = time.perf_counter() - began
    return {"records": good, "errors": bad, "seconds": elapsed, "peak_mb": _memory_mb("VmHWM"), "gross": gross}


# -- bank statements ----------------------------------------------------------------

STATEMENT_DAY = "2026-11-20"
OUR_ACCOUNT = "40702810900000000001"
PAYER_ACCOUNT = "40702810500000000777"
CAMT_NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
ONE_C_DOCUMENT_LINES = 20


def statement_amount(n: int) -> int:
    """Kopecks of the ``n``-th movement: spread like the rails' records."""
    return 1_000 + (n * 7919) % 5_000_000


def rubles(kopecks: int) -> str:
    return f"{kopecks // 100}.{kopecks % 100:02d}"


def _write_batched(out: BinaryIO, lines: Iterator[str], encoding: str, newline: str) -> int:
    """Write ``lines`` in batches; returns how many were written."""
    count = 0
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= 5_000:
            out.write((newline.join(batch) + newline).encode(encoding))
            count += len(batch)
            batch.clear()
    if batch:
        out.write((newline.join(batch) + newline).encode(encoding))
        count += len(batch)
    return count


def camt053_lines(entries: int) -> Iterator[str]:
    """A camt.053.001.08 statement of ``entries`` booked RUB credits (one per line),
    opening at 0 and closing at their total."""
    total = sum(statement_amount(n) for n in range(entries))
    yield '<?xml version="1.0" encoding="UTF-8"?>'
    yield (f'<Document xmlns="{CAMT_NAMESPACE}"><BkToCstmrStmt><GrpHdr><MsgId>BENCH-{STATEMENT_DAY}</MsgId>'
           f"<CreDtTm>{STATEMENT_DAY}T06:00:00+03:00</CreDtTm></GrpHdr>")
    yield (f"<Stmt><Id>STMT-{STATEMENT_DAY}</Id><CreDtTm>{STATEMENT_DAY}T06:00:00+03:00</CreDtTm>"
           f"<Acct><Id><Othr><Id>{OUR_ACCOUNT}</Id></Othr></Id><Ccy>RUB</Ccy></Acct>")
    for code, amount in (("OPBD", 0), ("CLBD", total)):
        yield (f'<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy="RUB">{rubles(amount)}</Amt>'
               f"<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{STATEMENT_DAY}</Dt></Dt></Bal>")
    for n in range(entries):
        yield (f'<Ntry><NtryRef>{n + 1}</NtryRef><Amt Ccy="RUB">{rubles(statement_amount(n))}</Amt>'
               f"<CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>{STATEMENT_DAY}</Dt></BookgDt>"
               f"<ValDt><Dt>{STATEMENT_DAY}</Dt></ValDt><AcctSvcrRef>ASR{n:010d}</AcctSvcrRef>"
               "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>"
               f"<NtryDtls><TxDtls><Refs><EndToEndId>SETTLE-{n:010d}</EndToEndId></Refs>"
               "<RltdPties><Dbtr><Pty><Nm>Payment rail settlement</Nm></Pty></Dbtr></RltdPties>"
               f"<RmtInf><Ustrd>Net settlement batch {n}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>")
    yield "</Stmt></BkToCstmrStmt></Document>"


def one_c_documents(lines: int) -> int:
    """How many payment orders make a 1CClientBankExchange file of at least ``lines``
    lines (10 header lines, a 9-line account section, ``КонецФайла``, then fewer
    than one more order's worth)."""
    return max(0, -(-(lines - 20) // ONE_C_DOCUMENT_LINES))


def one_c_lines(lines: int) -> Iterator[str]:
    """A 1CClientBankExchange file of at least ``lines`` lines: incoming payment orders
    to our account, the account section opening at 0 and closing at their total."""
    documents = one_c_documents(lines)
    total = rubles(sum(statement_amount(n) for n in range(documents)))
    day = "20.11.2026"
    yield from ("1CClientBankExchange", "ВерсияФормата=1.03", "Кодировка=Windows",
                "Отправитель=Бухгалтерия предприятия", "Получатель=", f"ДатаСоздания={day}",
                "ВремяСоздания=09:15:00", f"ДатаНачала={day}", f"ДатаКонца={day}", f"РасчСчет={OUR_ACCOUNT}")
    yield from ("СекцияРасчСчет", f"ДатаНачала={day}", f"ДатаКонца={day}", f"РасчСчет={OUR_ACCOUNT}",
                "НачальныйОстаток=0.00", f"ВсегоПоступило={total}", "ВсегоСписано=0.00",
                f"КонечныйОстаток={total}", "КонецРасчСчет")
    for n in range(documents):
        yield from (
            "СекцияДокумент=Платежное поручение", f"Номер={n + 1}", f"Дата={day}",
            f"Сумма={rubles(statement_amount(n))}", f"ПлательщикСчет={PAYER_ACCOUNT}",
            f"Плательщик=ИНН 7701234567 ООО \"Платежный агрегатор\" {PAYER_ACCOUNT}",
            "ПлательщикИНН=7701234567", "Плательщик1=ООО \"Платежный агрегатор\"", "ПлательщикБИК=044525225",
            f"ПолучательСчет={OUR_ACCOUNT}", "Получатель=ООО \"Маркетплейс\"", "ПолучательИНН=7707654321",
            "Получатель1=ООО \"Маркетплейс\"", "ПолучательБИК=044525974", "ВидОплаты=01", "Очередность=5",
            f"НазначениеПлатежа=Возмещение по операциям, реестр {n}", "ДатаСписано=",
            f"ДатаПоступило={day}", "КонецДокумента")
    yield "КонецФайла"


def write_camt053(out: BinaryIO, entries: int) -> int:
    _write_batched(out, camt053_lines(entries), "utf-8", "\n")
    return entries


def write_one_c(out: BinaryIO, lines: int) -> int:
    """Returns the lines actually written (whole documents only)."""
    return _write_batched(out, one_c_lines(lines), "cp1251", "\r\n")


#: Statement format -> (what its size counts, a writer returning the size written,
#: how many movements a file of that size holds).
STATEMENTS: dict[str, tuple[str, Callable[[BinaryIO, int], int], Callable[[int], int]]] = {
    "camt053": ("entries", write_camt053, lambda entries: entries),
    "1c": ("lines", write_one_c, one_c_documents),
}


def parse_statement_file(path: Path) -> dict[str, float]:  # float-ok: timings and megabytes
    """Parse the statement ``path`` and report counts, seconds and memory (run in a child process)."""
    from adapters.statements import StatementLine, StatementLineError, parse_statement

    base_mb = _memory_mb("VmRSS")
    good = bad = total = 0
    began = time.perf_counter()
    with path.open("rb") as stream:
        for item in parse_statement(stream):
            if isinstance(item, StatementLine):
                good += 1
                total += item.amount
            elif isinstance(item, StatementLineError):
                bad += 1
    elapsed = time.perf_counter() - began
    return {"records": good, "errors": bad, "seconds": elapsed, "base_mb": base_mb, "peak_mb": _memory_mb("VmHWM"),
            "amount": total}


def bench_statements(formats: list[str], size: int) -> None:
    """Each format at ``size`` and at a tenth of it, parsed in a fresh process."""
    print(f"\n{'statement':<10} {'size':>16} {'file':>9} {'movements':>9} {'errors':>6} {'seconds':>8} "
          f"{'records/s':>10} {'base MB':>8} {'peak MB':>8}")
    peaks: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        for name in formats:
            unit, writer, movements = STATEMENTS[name]
            peak_of: dict[int, tuple[int, float]] = {}  # float-ok: megabytes, by size asked for
            for count in (max(size // 10, 1), size):
                path = Path(folder) / f"{name}-{count}.statement"
                with path.open("wb") as out:
                    written = writer(out, count)
                assert written >= count, f"{name}: {written} {unit} written, {count} asked for"
                result = json.loads(subprocess.run([sys.executable, __file__, "--child-statement", str(path)],
                                                   check=True, capture_output=True, text=True).stdout)
                expected = movements(count)
                assert result["records"] == expected, result
                assert result["errors"] == 0, result
                assert result["amount"] == sum(statement_amount(n) for n in range(expected)), (
                    "parsed amounts differ from what was written")
                rate = result["records"] / result["seconds"]
                label = f"{written:,} {unit}"
                file_size = f"{path.stat().st_size / 2**20:.0f} MiB"
                print(f"{name:<10} {label:>16} {file_size:>9} {result['records']:>9} {result['errors']:>6} "
                      f"{result['seconds']:>8.2f} {rate:>10.0f} {result['base_mb']:>8.1f} "
                      f"{result['peak_mb']:>8.1f}", flush=True)
                peak_of[count] = (written, result["peak_mb"])
                path.unlink()
            (small, small_peak), (large, large_peak) = peak_of.values()
            peaks.append(f"{name}: peak {large_peak:.1f} MB at {large:,} {unit}, {small_peak:.1f} MB at "
                         f"{small:,} ({large_peak - small_peak:+.1f} MB for ten times the file)")
    for line in peaks:
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rails", default="mir,unionpay,alipay")
    parser.add_argument("--statements", default="camt053,1c",
                        help="statement formats to bench: camt053, 1c (empty for none)")
    parser.add_argument("--child", nargs=2, metavar=("RAIL", "FILE"), help=argparse.SUPPRESS)
    parser.add_argument("--child-statement", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(parse(args.child[0], Path(args.child[1]))))
        return
    if args.child_statement:
        print(json.dumps(parse_statement_file(Path(args.child_statement))))
        return
    rails = [rail for rail in args.rails.split(",") if rail]
    statements = [name for name in args.statements.split(",") if name]
    unknown = sorted(set(statements) - set(STATEMENTS))
    if unknown:
        parser.error(f"unknown statement format(s): {', '.join(unknown)}")
    if rails:
        bench_rails(rails, args.records)
    if statements:
        bench_statements(statements, args.records)


def bench_rails(rails: list[str], count: int) -> None:
    """Each rail's file of ``count`` records, parsed in a fresh process."""
    targets = {"mir": 300_000, "unionpay": 150_000, "alipay": 300_000}
    expected_gross = {rail: sum(r.gross for r in records(rail, count)) for rail in rails}
    print(f"{'rail':<10} {'file':>9} {'records':>9} {'errors':>6} {'seconds':>8} {'records/s':>10} "
          f"{'target':>8} {'peak MB':>8}")
    with tempfile.TemporaryDirectory() as folder:
        for rail in rails:
            path = Path(folder) / f"{rail}.settlement"
            write(rail, path, count)
            result = json.loads(subprocess.run([sys.executable, __file__, "--child", rail, str(path)],
                                               check=True, capture_output=True, text=True).stdout)
            assert result["records"] == count, result
            assert result["errors"] == 0, result
            assert result["gross"] == expected_gross[rail], "parsed amounts differ from what was written"
            rate = result["records"] / result["seconds"]
            size = f"{path.stat().st_size / 2**20:.0f} MiB"
            print(f"{rail:<10} {size:>9} {result['records']:>9} {result['errors']:>6} {result['seconds']:>8.2f} "
                  f"{rate:>10.0f} {targets[rail]:>8} {result['peak_mb']:>8.1f}", flush=True)
            path.unlink()


if __name__ == "__main__":
    main()
