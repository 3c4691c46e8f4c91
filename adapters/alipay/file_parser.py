"""The settlement file parser (see :mod:`.files` for the layout and the contract).

Speed matters here: finance imports files of a million lines, so a well-formed line
goes through one inlined loop body (one ``split``, one regex match, a few ``int``
calls). Everything off that path is checked field by field, which is also how a bad
line learns which field to blame.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from decimal import Decimal
from itertools import chain
from typing import BinaryIO

from adapters.base import MalformedFile, RecordError, RecordType, SettlementRecord
from adapters.packed import PackedSettlementRecord

from .codec import EXPONENTS, HOME_CURRENCY, AmountError, parse_rate
from .file_format import CHUNK_BYTES, COLUMNS, MAX_LINE_BYTES, MAX_SKIP_BYTES, TYPE_CODES

_CNY_PLACES = EXPONENTS[HOME_CURRENCY]
_TWO_PLACE_CURRENCIES = frozenset(code for code, places in EXPONENTS.items() if places == 2)
_PAYMENT = RecordType.PAYMENT
_PAYOUT = RecordType.PAYOUT
_SCALE: dict[int, int] = {places: 10 ** places for places in set(EXPONENTS.values())}
_MAX_DIGITS = 15
_CACHE_LIMIT = 4096


class _FieldError(Exception):
    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


def _minor(text: str, places: int, column: str) -> int:
    """Exact conversion of a major-unit decimal string to minor units, from its digits."""
    whole, dot, frac = text.partition(".")
    digits = whole[1:] if whole[:1] == "-" else whole
    if not (digits.isdigit() and digits.isascii() and len(digits) <= _MAX_DIGITS):
        raise _FieldError(column, f"not a decimal amount: {text[:32]!r}")
    if not dot:
        return int(whole) * _SCALE[places]
    if not (frac.isdigit() and frac.isascii()):
        raise _FieldError(column, f"not a decimal amount: {text[:32]!r}")
    if len(frac) > places:
        raise _FieldError(column, f"{text!r} has more than {places} decimal places")
    return int(whole + frac.ljust(places, "0"))


def _wrong_count(f: list[str], columns: int) -> None:
    if len(f) < columns:
        column = COLUMNS[len(f)] if len(f) < len(COLUMNS) else "line"
        raise _FieldError(column, f"missing column: {len(f)} of {columns} fields")
    raise _FieldError("line", f"{len(f)} fields, the header has {columns}")


def _amounts(f: list[str]) -> tuple[int, int, int, int]:
    """Amount, Fee, Settlement and Rmb_settlement of a line off the fast path, every
    amount checked one field at a time in column order so the first bad field is the
    one named."""
    places = EXPONENTS.get(f[7])
    if places is None:
        raise _FieldError("Currency", f"unknown currency {f[7][:8]!r}")
    gross = _minor(f[2], places, "Amount")
    _minor(f[3], _CNY_PLACES, "Rmb_amount")
    fee = _minor(f[4], places, "Fee")
    net = _minor(f[5], places, "Settlement")
    return gross, fee, net, _minor(f[6], _CNY_PLACES, "Rmb_settlement")


#: The usual line: both references, then the five amounts with exactly two decimals.
#: Lines matching it take the fast path (digits straight to ``int``); anything else is
#: checked field by field, which also names the field that is wrong.
_TWO_PLACES = re.compile(r"[^|]*\|[^|]*" + r"\|-?[0-9]{1,15}\.[0-9]{2}" * 5 + r"\|").match

#: The order in which the parse loop lists a record's field values: the order of the
#: dataclass's fields, checked here so a change to the record cannot go unnoticed.
_FIELDS = ("rail", "line_number", "record_type", "rail_reference", "reference", "gross", "fee", "net",
           "currency", "transaction_date", "settlement_date", "rrn", "arn", "settlement_amount",
           "settlement_currency", "fx_rate", "status")
if PackedSettlementRecord.field_names != _FIELDS:
    raise RuntimeError("SettlementRecord's fields changed: update the Alipay parser's _FIELDS and its loop")


class _Parser:
    """State of one pass over one file: line counter, small caches of repeated values
    (timestamps and rates recur on every line of a day's file)."""

    def __init__(self, stream: BinaryIO, rail: str, max_consecutive_errors: int) -> None:
        self.stream = stream
        self.rail = rail
        self.max_errors = max_consecutive_errors
        self.dates: dict[str, dt.date] = {}
        self.rates: dict[str, Decimal] = {}
        self.columns = len(COLUMNS)
        self.line_number = 0
        self.consecutive = 0

    def header(self) -> None:
        raw = self.stream.readline(MAX_LINE_BYTES + 1)
        self.line_number = 1
        if not raw:
            raise MalformedFile("the settlement file is empty: no header on line 1", rail=self.rail,
                                line_number=1, field_name="header")
        try:
            text = raw.decode("utf-8-sig").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise MalformedFile("line 1 is not UTF-8 text: not an Alipay settlement file",
                                rail=self.rail, line_number=1, field_name="header") from exc
        names = text.split("|")
        if tuple(names[:len(COLUMNS)]) != COLUMNS:
            got = next((n for n, want in zip(names, COLUMNS, strict=False) if n != want), names[-1])
            raise MalformedFile(f"line 1 is not the settlement header (found {got[:40]!r})",
                                rail=self.rail, line_number=1, field_name="header")
        self.columns = len(names)

    def batches(self) -> Iterator[list[SettlementRecord | RecordError]]:
        """The items of the file, one list per chunk read: a consumer iterating them
        through ``chain.from_iterable`` pays the generator's resumption once per chunk
        rather than once per line. When the file turns out unusable mid-chunk, the items
        of that chunk read before it did still come out, then :class:`MalformedFile`."""
        self.header()
        read = self.stream.read
        carry = b""
        while True:
            chunk = read(CHUNK_BYTES)
            items: list[SettlementRecord | RecordError] = []
            try:
                carry = self._take(carry, chunk, items)
            except MalformedFile:
                yield items
                raise
            yield items
            if not chunk:
                return

    def _take(self, carry: bytes, chunk: bytes, items: list[SettlementRecord | RecordError]) -> bytes:
        """Parse the complete lines of ``carry + chunk`` into ``items``; returns the
        incomplete last line, to be completed by the next chunk (``chunk`` empty: the
        end of the file, where the last line needs no line break)."""
        if not chunk:
            if carry:
                self._parse_raw(carry.split(b"\n"), items)
            return b""
        data = carry + chunk if carry else chunk
        cut = data.rfind(b"\n") + 1
        complete, carry = data[:cut], data[cut:]
        if len(carry) > MAX_LINE_BYTES:
            if complete:
                self._parse_raw(complete.split(b"\n")[:-1], items)
            items.append(self._counted(self._overlong()))
            return b""
        if not complete:
            return carry
        try:
            text = complete.decode("utf-8")
        except UnicodeDecodeError:
            self._parse_raw(complete.split(b"\n")[:-1], items)
            return carry
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        lines = text.split("\n")
        lines.pop()  # the empty piece after the final newline
        self._parse_lines(lines, items)
        return carry

    def _parse_raw(self, raw_lines: list[bytes], out: list[SettlementRecord | RecordError]) -> None:
        """Lines of a chunk that does not decode as a whole: each line on its own, so one
        bad byte costs one line, not the chunk."""
        for raw in raw_lines:
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                self.line_number += 1
                out.append(self._counted(self._error(self._bad_encoding_column(raw), "not UTF-8 text", raw)))
                continue
            self._parse_lines([line.removesuffix("\r")], out)

    def _parse_lines(  # noqa: PLR0912, PLR0915 - one inlined loop body is the point of the fast path
            self, lines: list[str], out: list[SettlementRecord | RecordError]) -> None:
        """Append the items of ``lines`` to ``out`` (items appended stay there when the
        error budget runs out part way)."""
        # The hot loop: everything it touches is a local, and a well-formed line with
        # two-decimal amounts costs one split, one regex match and a few int() calls.
        append = out.append
        columns, rail, dates, rates = self.columns, self.rail, self.dates, self.rates
        two_places, two_place_currencies, types = _TWO_PLACES, _TWO_PLACE_CURRENCIES, TYPE_CODES
        # A packed record: one tuple and one slot write (see adapters.packed).
        new, packed, store = object.__new__, PackedSettlementRecord, PackedSettlementRecord.store
        payment, payout, home, date_of, rate_of = _PAYMENT, _PAYOUT, HOME_CURRENCY, self._date, self._rate
        exact = columns == len(COLUMNS)
        number = self.line_number
        consecutive = self.consecutive
        for line in lines:
            number += 1
            if not line:
                continue
            try:
                if len(line) > MAX_LINE_BYTES:
                    raise _FieldError("line", f"longer than {MAX_LINE_BYTES} bytes")
                f = line.split("|")
                if len(f) != columns:
                    _wrong_count(f, columns)
                if exact:
                    reference, rail_reference, amount, _, fee_text, settlement, rmb_settlement, \
                        currency, rate_text, paid_at, settled_at, type_code, status, _ = f
                else:
                    reference, rail_reference, amount, _, fee_text, settlement, rmb_settlement, \
                        currency, rate_text, paid_at, settled_at, type_code, status = f[:13]
                if not reference or not rail_reference:
                    raise _FieldError("Transaction_id" if reference else "Partner_transaction_id", "empty")
                if currency in two_place_currencies and two_places(line):
                    gross = int(amount.replace(".", ""))
                    fee = int(fee_text.replace(".", ""))
                    net = int(settlement.replace(".", ""))
                    rmb_net: int | None = None
                else:
                    gross, fee, net, rmb_net = _amounts(f)
                negative = gross < 0
                record_type = types.get(type_code)
                if record_type is not payment:
                    if record_type is None:
                        raise _FieldError("Type", f"unknown type {type_code[:8]!r}")
                    if not negative:
                        gross = -gross
                elif negative:
                    raise _FieldError("Amount", "a payment with a negative amount")
                if gross - fee != net:
                    raise _FieldError("Settlement",
                                      f"Amount - Fee is {gross - fee}, Settlement is {net} (minor units)")
                if rate_text:
                    rate: Decimal | None = rates.get(rate_text) or rate_of(rate_text)
                    settlement_amount: int | None = (
                        int(rmb_settlement.replace(".", "")) if rmb_net is None else rmb_net)
                    settlement_currency: str | None = home
                elif currency != home:
                    raise _FieldError("Rate", f"a {currency} record needs its rate to CNY")
                else:
                    rate = settlement_amount = settlement_currency = None
                # A payment's (or transfer's) Transaction_id is the settled operation's own
                # id: the rrn. A refund's or chargeback's names the trade it reverses.
                own = rail_reference if record_type is payment or record_type is payout else ""
                record = new(packed)
                store(record, (rail, number, record_type, rail_reference, reference, gross, fee, net, currency,
                               dates.get(paid_at) or date_of(paid_at, "Payment_time"),
                               dates.get(settled_at) or date_of(settled_at, "Settlement_time"), own, "",
                               settlement_amount, settlement_currency, rate, status))
                append(record)
                consecutive = 0
            except _FieldError as exc:
                consecutive += 1
                if consecutive > self.max_errors:
                    raise MalformedFile(f"more than {self.max_errors} consecutive bad lines up to line "
                                        f"{number}: not a usable settlement file",
                                        rail=rail, line_number=number, field_name="line") from None
                self.line_number = number
                append(self._error(exc.column, exc.reason, line))
        self.line_number = number
        self.consecutive = consecutive

    def _counted(self, error: RecordError) -> RecordError:
        self.consecutive += 1
        if self.consecutive > self.max_errors:
            raise MalformedFile(f"more than {self.max_errors} consecutive bad lines up to line "
                                f"{error.line_number}: not a usable settlement file",
                                rail=self.rail, line_number=error.line_number, field_name="line")
        return error

    def _rate(self, text: str) -> Decimal:
        try:
            rate = parse_rate(text)
        except AmountError as exc:
            raise _FieldError("Rate", str(exc)) from None
        if len(self.rates) >= _CACHE_LIMIT:
            self.rates.clear()
        self.rates[text] = rate
        return rate

    def _date(self, text: str, column: str) -> dt.date:
        try:
            if len(text) != 19 or text[10] != " " or text[13] != ":" or text[16] != ":" or not text.isascii():
                raise ValueError(text)
            day = dt.date.fromisoformat(text[:10])
            dt.time.fromisoformat(text[11:])
        except ValueError:
            raise _FieldError(column, f"not a YYYY-MM-DD HH:MM:SS time: {text[:32]!r}") from None
        if len(self.dates) >= _CACHE_LIMIT:
            self.dates.clear()
        self.dates[text] = day
        return day

    def _overlong(self) -> RecordError:
        """The current line is longer than any record: report it, then skip to its end
        (or give up on the file if it never ends)."""
        self.line_number += 1
        error = self._error("line", f"longer than {MAX_LINE_BYTES} bytes", "")
        skipped = 0
        while True:
            chunk = self.stream.readline(MAX_LINE_BYTES)
            skipped += len(chunk)
            if not chunk or chunk.endswith(b"\n"):
                return error
            if skipped > MAX_SKIP_BYTES:
                raise MalformedFile(f"line {self.line_number} runs past {MAX_SKIP_BYTES} bytes without "
                                    "ending: not a usable settlement file", rail=self.rail,
                                    line_number=self.line_number, field_name="line")

    def _bad_encoding_column(self, raw: bytes) -> str:
        for index, part in enumerate(raw.split(b"|")):
            try:
                part.decode("utf-8")
            except UnicodeDecodeError:
                return COLUMNS[index] if index < len(COLUMNS) else "line"
        return "line"

    def _error(self, column: str, reason: str, line: str | bytes) -> RecordError:
        raw = line[:200].decode("utf-8", "replace") if isinstance(line, bytes) else line[:200]
        return RecordError(rail=self.rail, line_number=self.line_number, field=column, reason=reason, raw=raw)


def parse_lines(stream: BinaryIO, rail: str, max_consecutive_errors: int,
                ) -> Iterator[SettlementRecord | RecordError]:
    """The items of ``stream``; :func:`.files.parse_settlement` states the contract."""
    return chain.from_iterable(_Parser(stream, rail, max_consecutive_errors).batches())
