"""The Mir-style acquirer register: writer and streaming parser.

NSPK's clearing file layouts are not public. This register follows the shape of the
operation registers Russian acquiring banks send their merchants: one line per
settled operation, semicolon-separated (the Russian CSV habit), a header line, dates
as ``DD.MM.YYYY``, amounts as signed integer kopecks (refunds and chargebacks
negative), ASCII only, ``\\n`` or ``\\r\\n`` line ends. The columns (the writer uses
this order; the parser finds them by header name in any order and ignores extras):

====================  ===========================================================
``RECORD_TYPE``       ``PAYMENT``, ``REFUND``, ``CHARGEBACK``, ``ADJUSTMENT``, ``PAYOUT``
``RRN``               RRN of the settled operation (completion, sale or refund)
``ORIGINAL_RRN``      RRN of the original authorization or sale (``rail_reference``)
``AUTH_CODE``         approval code, up to 6 characters, may be empty
``MASKED_PAN``        first six and last four digits, the rest ``*``; may be empty
``AMOUNT``            gross amount, signed kopecks
``CURRENCY``          ISO 4217 numeric, ``643``
``TRANSACTION_DATE``  the day the host processed the operation (Moscow)
``SETTLEMENT_DATE``   the day the money is paid
``FEE``               merchant discount, kopecks
``NET``               ``AMOUNT - FEE``
``REFERENCE``         our reference: the authorization's or sale's for payments,
                      the refund's for refunds
====================  ===========================================================

The last line is a trailer ``TOTAL;<records>;<sum of NET>`` so that a file cut short
in transfer is detected rather than silently reconciled as "missing" payments.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from operator import itemgetter
from typing import BinaryIO, TypeVar

from adapters.base import MalformedFile, RecordError, RecordType, SettlementRecord
from adapters.mir.register import (
    COLUMNS,
    HEADER,
    RECORD_TYPE_CODES,
    TRAILER_TAG,
    MirSettlementRecord,
    PackedRecord,
    set_values,
    write_register,
)
from adapters.mir.terms import CURRENCY, CURRENCY_NUMERIC, RAIL

_TYPES = {code: record_type for record_type, code in RECORD_TYPE_CODES.items()}
_ID = r"([A-Za-z0-9]{1,32})"
_INT = r"(-?[0-9]{1,18})"
_DATE = r"([0-9]{2}\.[0-9]{2}\.[0-9]{4})"
#: What the fast path accepts in each column; the _check_* functions below say the
#: same in Python and name the column when a line does not match.
_PATTERNS = {
    "RECORD_TYPE": f"({'|'.join(_TYPES)})", "RRN": _ID, "ORIGINAL_RRN": _ID,
    "AUTH_CODE": r"([A-Za-z0-9]{0,6})", "MASKED_PAN": r"((?:[0-9]{6}\*{3,9}[0-9]{4})?)",
    "AMOUNT": _INT, "CURRENCY": f"({CURRENCY_NUMERIC})", "TRANSACTION_DATE": _DATE,
    "SETTLEMENT_DATE": _DATE, "FEE": _INT, "NET": _INT, "REFERENCE": r"([\x21-\x3a\x3c-\x7e]{0,64})",
}
_EXTRA = r"[\x20-\x3a\x3c-\x7e]*"
_MASK = re.compile(_PATTERNS["MASKED_PAN"], re.ASCII).fullmatch
_REFERENCE = re.compile(_PATTERNS["REFERENCE"], re.ASCII).fullmatch
_PAN_LIKE = re.compile(r"[0-9](?:[ -]?[0-9]){12,}")
_BOM = b"\xef\xbb\xbf"
_DATE_CACHE_SIZE = 4096
_T = TypeVar("_T")
_DATE_COLUMNS = frozenset({"TRANSACTION_DATE", "SETTLEMENT_DATE"})


def parse_register(stream: BinaryIO, *, rail: str = RAIL, max_consecutive_errors: int = 100,
                   chunk_size: int = 1 << 20) -> Iterator[SettlementRecord | RecordError]:
    """Stream the register in ``stream``: one :class:`MirSettlementRecord` or
    :class:`RecordError` per data line, in file order, reading ``chunk_size`` bytes at
    a time (memory does not grow with the file).

    A bad line (wrong encoding, missing column, non-numeric amount, bad date,
    ``AMOUNT - FEE != NET``, an unmasked card number...) yields a RecordError naming
    its line and the first bad column, and parsing goes on; blank lines are skipped.
    A missing or inconsistent trailer is a RecordError too. :class:`MalformedFile` is
    raised when the file is empty, its first line is not a register header, a line is
    longer than ``chunk_size``, or more than ``max_consecutive_errors`` lines in a row
    are bad: a 100 MB file of garbage fails at its first line, not after reading it.
    """
    batches = _batches(stream, chunk_size)
    first = _next_batch(batches, 0, rail)
    if not first:
        raise MalformedFile("empty file: no register header", rail=rail, line_number=1,
                            field_name="header")
    slow = _SlowPath(first[0], rail, max_consecutive_errors)
    # One regex over the whole line checks every column in C; its groups come out in
    # header order and ``pick`` puts them in COLUMNS order.
    fullmatch = re.compile(";".join(_PATTERNS.get(name, _EXTRA) for name in slow.names),
                           re.ASCII).fullmatch
    known = [name for name in slow.names if name in _PATTERNS]
    order = [known.index(name) for name in COLUMNS]
    # t[:] of a tuple is the tuple itself: no reordering cost for our own layout.
    pick = itemgetter(slice(None)) if order == list(range(len(order))) else itemgetter(*order)
    types, dates, new, packed, store = _TYPES, slow.dates, object.__new__, PackedRecord, set_values
    line_number = 1
    good = net_total = 0
    trailer_seen = False
    batch: list[str] | None = first[1:]
    del first
    while batch is not None:
        for line in batch:
            line_number += 1
            match = fullmatch(line)
            if match is not None and not trailer_seen:
                rtype, rrn, orig, auth, pan, gross_s, _, tdate_s, sdate_s, fee_s, net_s, ref = pick(
                    match.groups())
                gross, fee, net = int(gross_s), int(fee_s), int(net_s)
                try:
                    tdate = dates.get(tdate_s) or _date(tdate_s, dates)
                    sdate = dates.get(sdate_s) or _date(sdate_s, dates)
                except ValueError:
                    pass    # not a calendar date: the slow path says which
                else:
                    if gross - fee == net:
                        good += 1
                        net_total += net
                        # PackedRecord.pack, inline: a call less per record is 14 % faster.
                        record = new(packed)
                        store(record, (rail, line_number, types[rtype], orig, ref, gross, fee, net,
                                       CURRENCY, tdate, sdate, rrn, "", None, None, None, "", auth, pan))
                        yield record
                        continue
            if not line:
                continue
            item = slow.handle(line.split(";"), line, line_number, good, net_total)
            trailer_seen = slow.trailer_seen
            if item is not None:
                yield item
        batch = _next_batch(batches, line_number, rail)
    if not trailer_seen:
        yield _error(rail, line_number + 1, TRAILER_TAG,
                     "no trailer: the file ends early (truncated in transfer?)", "")


class _SlowPath:
    """Everything but a good line: header, bad lines, trailer, the error budget.

    The fast path counts its records (``good``) and their net total; this class
    counts the rest, so the trailer is checked against every line and "consecutive"
    bad lines restart whenever the fast path accepted one in between."""

    def __init__(self, header: str, rail: str, max_consecutive_errors: int) -> None:
        self.rail = rail
        self.names = header.split(";")
        self.index = {name: position for position, name in enumerate(self.names)}
        missing = [name for name in COLUMNS if name not in self.index]
        if missing or len(self.index) != len(self.names):
            found = repr(_safe_raw(header)[:80])
            what = f"missing {', '.join(missing)}" if missing else "a column appears twice"
            raise MalformedFile(f"no register header on line 1 ({what}); found {found}", rail=rail,
                                line_number=1, field_name=missing[0] if missing else "header")
        self.max_consecutive_errors = max_consecutive_errors
        self.dates: dict[str, dt.date] = {}
        self.trailer_seen = False
        self._lines = 0          # data lines seen here (good or bad)
        self._bad = 0
        self._net = 0            # net of the good records built here
        self._consecutive = 0
        self._good_at_last_error = 0

    def handle(self, fields: list[str], line: str, line_number: int, good: int,
               net_total: int) -> SettlementRecord | RecordError | None:
        """The item for a line the fast path did not take (None for a good trailer);
        raises MalformedFile when the error budget runs out."""
        item: SettlementRecord | RecordError
        if self.trailer_seen:
            item = _error(self.rail, line_number, "line", "data after the trailer", line)
        elif line.startswith(TRAILER_TAG + ";"):
            self.trailer_seen = True
            problem = _check_trailer(line, good + self._lines,
                                     None if self._bad else net_total + self._net)
            if problem is None:
                return None
            item = _error(self.rail, line_number, TRAILER_TAG, problem, line)
        else:
            self._lines += 1
            item = self.check_line(fields, line, line_number)
        if isinstance(item, SettlementRecord):
            self._net += item.net
            self._consecutive = 0
            return item
        self._bad += 1
        self._consecutive = 1 if good != self._good_at_last_error else self._consecutive + 1
        self._good_at_last_error = good
        if self._consecutive > self.max_consecutive_errors:
            raise MalformedFile(f"more than {self.max_consecutive_errors} bad lines in a row; "
                                f"last: {item.field}: {item.reason}", rail=self.rail,
                                line_number=line_number, field_name=item.field)
        return item

    def check_line(self, fields: list[str], line: str, line_number: int) -> SettlementRecord | RecordError:
        """Check the columns in file order and report the first bad one; a line that
        passes becomes a record all the same."""
        ncols = len(self.names)
        for position, text in enumerate(fields):
            if not text.isascii():
                return self._error(line_number, self.names[position] if position < ncols else "line",
                                   "not ASCII text (wrong encoding? the register is ASCII)", line)
        if len(fields) < ncols:
            return self._error(line_number, self.names[len(fields)],
                               f"missing column: the line has {len(fields)} of {ncols} fields", line)
        if len(fields) > ncols:
            return self._error(line_number, "line", f"{len(fields)} fields where the header has {ncols}",
                               line)
        values: dict[str, object] = {}
        for name, text in zip(self.names, fields, strict=True):
            try:
                if name in _DATE_COLUMNS:
                    values[name] = _date(text, self.dates)
                elif (check := _CHECKS.get(name)) is not None:
                    values[name] = check(text)
            except ValueError as exc:
                return self._error(line_number, name, str(exc), line)
        gross, fee, net = (_as(int, values[name]) for name in ("AMOUNT", "FEE", "NET"))
        if gross - fee != net:
            return self._error(line_number, "NET", f"AMOUNT - FEE = {gross - fee}, not {net}", line)
        return MirSettlementRecord(
            self.rail, line_number, _as(RecordType, values["RECORD_TYPE"]),
            _as(str, values["ORIGINAL_RRN"]), _as(str, values["REFERENCE"]), gross, fee, net, CURRENCY,
            _as(dt.date, values["TRANSACTION_DATE"]), _as(dt.date, values["SETTLEMENT_DATE"]),
            _as(str, values["RRN"]), auth_code=_as(str, values["AUTH_CODE"]),
            masked_pan=_as(str, values["MASKED_PAN"]))

    def _error(self, line_number: int, field: str, reason: str, line: str) -> RecordError:
        return _error(self.rail, line_number, field, reason, line)


def _as(kind: type[_T], value: object) -> _T:
    assert isinstance(value, kind)
    return value


class _LineTooLong(Exception):
    """Raised by :func:`_batches` for a line longer than one chunk."""


def _batches(stream: BinaryIO, chunk_size: int) -> Iterator[list[str]]:
    """The lines of ``stream`` in lists, one list per chunk read. Bytes are decoded as
    ASCII with ``surrogateescape`` so that a non-ASCII byte costs nothing until a
    line is checked (``str.isascii`` is then false). ``\r\n`` counts as one line end;
    a lone ``\r`` stays in its line."""
    tail = b""
    at_start = True
    while chunk := stream.read(chunk_size):
        if at_start:
            at_start = False
            chunk = chunk.removeprefix(_BOM)
        data = tail + chunk if tail else chunk
        cut = data.rfind(b"\n")
        tail = data[cut + 1:]
        if len(tail) > chunk_size:
            raise _LineTooLong
        if cut >= 0:
            text = data[:cut + 1].decode("ascii", "surrogateescape")
            if "\r" in text:
                text = text.replace("\r\n", "\n")
            yield text[:-1].split("\n")
    if tail:
        yield [tail.decode("ascii", "surrogateescape").removesuffix("\r")]


def _next_batch(batches: Iterator[list[str]], line_number: int, rail: str) -> list[str] | None:
    try:
        return next(batches, None)
    except _LineTooLong:
        raise MalformedFile(f"line {line_number + 1} is longer than one read chunk: not a register",
                            rail=rail, line_number=line_number + 1, field_name="line") from None


def _is_int(text: str) -> bool:
    """Signed decimal digits only (``int()`` would also take spaces, ``_`` and ``+``),
    at most 18 of them."""
    digits = text[1:] if text[:1] == "-" else text
    return 0 < len(digits) <= 18 and digits.isdigit()


def _date(text: str, cache: dict[str, dt.date]) -> dt.date:
    """``DD.MM.YYYY``; remembered, since a register holds few distinct days."""
    if not (len(text) == 10 and text[2] == "." and text[5] == "."
            and (text[:2] + text[3:5] + text[6:]).isdigit()):
        raise ValueError("not a DD.MM.YYYY date")
    try:
        day = dt.date(int(text[6:]), int(text[3:5]), int(text[:2]))
    except ValueError:
        raise ValueError("not a calendar date") from None
    if len(cache) < _DATE_CACHE_SIZE:
        cache[text] = day
    return day


def _check_id(text: str) -> str:
    if not (0 < len(text) <= 32 and text.isalnum()):
        raise ValueError("must be 1-32 letters or digits")
    return text


def _check_auth(text: str) -> str:
    if len(text) > 6 or (text and not text.isalnum()):
        raise ValueError("must be up to 6 letters or digits")
    return text


def _check_pan(text: str) -> str:
    if text and not _MASK(text):
        if text.isdigit() and 13 <= len(text) <= 19:
            raise ValueError("an unmasked card number")
        raise ValueError("not a masked card number (6 digits, *, 4 digits)")
    return text


def _check_int(text: str) -> int:
    if not _is_int(text):
        raise ValueError("not an integer number of kopecks")
    return int(text)


def _check_currency(text: str) -> str:
    if text != CURRENCY_NUMERIC:
        raise ValueError(f"currency must be {CURRENCY_NUMERIC} ({CURRENCY})")
    return CURRENCY


def _check_reference(text: str) -> str:
    if not _REFERENCE(text):
        raise ValueError("must be up to 64 printable characters")
    return text


def _check_type(text: str) -> RecordType:
    if text not in _TYPES:
        raise ValueError(f"unknown record type (expected one of {', '.join(_TYPES)})")
    return _TYPES[text]


_CHECKS: dict[str, Callable[[str], object]] = {
    "RECORD_TYPE": _check_type, "RRN": _check_id, "ORIGINAL_RRN": _check_id, "AUTH_CODE": _check_auth,
    "MASKED_PAN": _check_pan, "AMOUNT": _check_int, "CURRENCY": _check_currency,
    "FEE": _check_int, "NET": _check_int, "REFERENCE": _check_reference,
}


def _check_trailer(line: str, data_lines: int, net_total: int | None) -> str | None:
    """What is wrong with the trailer, or None. The net total is only compared when
    every line parsed (``net_total`` None otherwise)."""
    parts = line.split(";")
    if len(parts) != 3 or not (parts[1].isdigit() and _is_int(parts[2])):
        return f"malformed trailer: expected {TRAILER_TAG};<records>;<net total>"
    if int(parts[1]) != data_lines:
        return f"the trailer counts {parts[1]} records, the file has {data_lines}"
    if net_total is not None and int(parts[2]) != net_total:
        return f"the trailer's net total {parts[2]} differs from the lines' {net_total}"
    return None


def _error(rail: str, line_number: int, field: str, reason: str, line: str) -> RecordError:
    return RecordError(rail=rail, line_number=line_number, field=field, reason=reason,
                       raw=_safe_raw(line))


def _safe_raw(line: str) -> str:
    """The start of a bad line for a human: non-ASCII bytes escaped, and anything that
    looks like a card number masked (a bad line may hold a full PAN)."""
    text = line[:200].encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
    return _PAN_LIKE.sub(lambda m: "*" * len(m.group()), text)


__all__ = ["COLUMNS", "HEADER", "MirSettlementRecord", "parse_register", "write_register"]
