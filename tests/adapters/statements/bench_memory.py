"""Peak memory and throughput of the statement parsers on very large files.

Writes a camt.053.001.08 statement and a 1CClientBankExchange file (cp1251) with
``--entries`` payments each to a temporary directory, then parses each in a fresh
process and reports the peak resident memory above the process's baseline
(``ru_maxrss`` before and after), the time, and whether opening + movements =
closing. Flat memory means the delta stays about the same for 10,000 and for
1,000,000 entries.

    python -m tests.adapters.statements.bench_memory --entries 1000000

Not collected by pytest (no ``test_`` prefix): it takes minutes, not seconds.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.adapters.statements.factories import camt053_chunks, one_c_chunks


def _peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(path: Path) -> dict[str, object]:
    """Parse ``path`` with the balance check and report memory, time and totals."""
    from adapters.statements import BalanceCheck, StatementLine, parse_statement

    check = BalanceCheck()
    lines = 0
    with path.open("rb") as stream:
        baseline = _peak_rss_kib()
        started = time.perf_counter()
        for item in check.watch(parse_statement(stream)):
            lines += isinstance(item, StatementLine)
        elapsed = time.perf_counter() - started
    peak = _peak_rss_kib()
    [result] = check.results()
    return {"file": path.name, "mib": round(path.stat().st_size / 2**20, 1), "lines": lines,
            "seconds": round(elapsed, 1), "lines_per_second": round(lines / elapsed),
            "baseline_rss_mib": round(baseline / 1024, 1), "peak_rss_mib": round(peak / 1024, 1),
            "delta_rss_mib": round((peak - baseline) / 1024, 1), "balanced": result.ok}


def _write(path: Path, chunks: Iterator[bytes]) -> Path:
    with path.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    with tempfile.TemporaryDirectory(prefix="statement-bench-") as directory:
        files = [
            _write(Path(directory) / f"camt053-{args.entries}.xml", camt053_chunks(8, args.entries)),
            _write(Path(directory) / f"1c-{args.entries}.txt", one_c_chunks(args.entries)),
        ]
        for path in files:
            # a fresh interpreter per file, so one parse's peak cannot hide another's
            done = subprocess.run([sys.executable, "-m", __spec__.name if __spec__ else __name__,
                                   "--measure", str(path)], check=True, capture_output=True, text=True)
            print(done.stdout.strip())


if __name__ == "__main__":
    main()
