"""Memory does not grow with the number of entries.

The parse of a statement ten times longer must peak at about the same traced
memory. The 1,000,000-entry measurement (peak RSS of the parsing process, against a
file a tenth the size) is in ``bench/rails.py``; this keeps the suite fast.
"""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Callable, Iterator

import pytest

from adapters.statements import BalanceCheck, parse_statement
from tests.adapters.statements.factories import GeneratedStream, camt053_chunks, one_c_chunks


def _peak(chunks: Iterator[bytes]) -> tuple[int, int]:
    """(traced peak bytes, lines) of parsing ``chunks`` while tallying balances."""
    check = BalanceCheck()
    tracemalloc.start()
    try:
        for _ in check.watch(parse_statement(io.BufferedReader(GeneratedStream(chunks)))):
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    [result] = check.results()
    assert result.errors == 0
    return peak, result.lines


@pytest.mark.parametrize("chunks", [
    lambda n: camt053_chunks(8, n),
    lambda n: one_c_chunks(n, encoding="cp866"),
], ids=["camt053", "1c"])
def test_peak_memory_is_flat(chunks: Callable[[int], Iterator[bytes]]) -> None:
    small, small_lines = _peak(chunks(200))
    large, large_lines = _peak(chunks(2_000))
    assert (small_lines, large_lines) == (200, 2_000)
    # the generator's own batch buffer dominates both; ten times the entries may
    # not add more than a fraction of it
    assert large < small * 1.5, (small, large)
