"""Settlement-file parsing speed and memory, per rail.

    python bench/rails.py                 # 1,000,000 records per rail
    python bench/rails.py --records 200000

For each rail a file of N payment records is written with the rail's own writer
(the same code its simulator uses), then parsed with the rail's streaming parser in
a fresh process, so the peak resident memory printed is the parse's own. Targets:
at least 300,000 records/s for the CSV (Mir) and pipe (Alipay) files, 150,000
records/s for the fixed-width GBK (UnionPay ZM) file, peak memory under 200 MB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

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
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"records": good, "errors": bad, "seconds": elapsed, "peak_mb": peak_mb, "gross": gross}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rails", default="mir,unionpay,alipay")
    parser.add_argument("--child", nargs=2, metavar=("RAIL", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(parse(args.child[0], Path(args.child[1]))))
        return
    targets = {"mir": 300_000, "unionpay": 150_000, "alipay": 300_000}
    expected_gross = {rail: sum(r.gross for r in records(rail, args.records)) for rail in args.rails.split(",")}
    print(f"{'rail':<10} {'file':>9} {'records':>9} {'errors':>6} {'seconds':>8} {'records/s':>10} "
          f"{'target':>8} {'peak MB':>8}")
    with tempfile.TemporaryDirectory() as folder:
        for rail in args.rails.split(","):
            path = Path(folder) / f"{rail}.settlement"
            write(rail, path, args.records)
            result = json.loads(subprocess.run([sys.executable, __file__, "--child", rail, str(path)],
                                               check=True, capture_output=True, text=True).stdout)
            assert result["records"] == args.records, result
            assert result["errors"] == 0, result
            assert result["gross"] == expected_gross[rail], "parsed amounts differ from what was written"
            rate = result["records"] / result["seconds"]
            size = f"{path.stat().st_size / 2**20:.0f} MiB"
            print(f"{rail:<10} {size:>9} {result['records']:>9} {result['errors']:>6} {result['seconds']:>8.2f} "
                  f"{rate:>10.0f} {targets[rail]:>8} {result['peak_mb']:>8.1f}", flush=True)
            path.unlink()


if __name__ == "__main__":
    main()
