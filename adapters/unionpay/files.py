"""ZM reconciliation files: a streaming parser and a writer.

The layout and how each field maps to :class:`~adapters.base.SettlementRecord` are in
:mod:`.zm_layout`. The parser reads one line at a time (memory does not grow with
the file) and slices each record once with a precompiled :class:`struct.Struct` that
picks out only the fields it needs. A line is checked as GBK only when it is not
plain ASCII.

Errors: a bad line becomes a :class:`RecordError` naming the line and the field (by
its ACP key, the reason giving the Chinese name and field number) and parsing goes
on. :class:`MalformedFile` is raised when the file as a whole is unusable, and names
a line and a field too: an empty (or all blank) file, line 1 and ``txnCode``, the
first field of a record; a file with no line a ZM record, the first bad line and its
field; more than ``max_consecutive_errors`` bad lines in a row, the last of them and
its field; a run of 1 MiB without a line break, the line it starts and ``record``.
Records read before any of these reach the caller first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import BinaryIO

from adapters.base import MalformedFile, RecordError, RecordType, SettlementRecord
from adapters.unionpay.constants import CURRENCY, RAIL
from adapters.unionpay.zm_layout import (
    BY_KEY,
    FIELDS,
    MIN_RECORD_LENGTH,
    RECORD_LENGTH,
    SEPARATOR,
    TYPE_BY_CODE,
    TYPE_BY_TXN_TYPE,
    WRITE_CODES,
    ZmField,
    field_at,
)

_CHUNK = 1024 * 1024
_CR = 13
_CRLF_RECORD = RECORD_LENGTH + 1
_MAX_LINE_RUN = 1024 * 1024
_CACHE_LIMIT = 4096
_NAME = re.compile(r"INN(\d{2})(\d{2})(\d{2})\d{2}ZM_")

# The fields the parser needs, in line order; signed amounts split into letter + digits.
_PICK: dict[str, str] = {
    "txnCode": "3s", "traceNo": "6s", "traceTime": "4s6s", "txnAmt": "12s", "queryId": "21s",
    "orderId": "32s", "merFee": "1s12s", "settleAmt": "1s12s", "txnType": "2s",
    "origQryId": "21s", "netAmt": "1s12s", "origOrderId": "32s", "reserved": "8s",
}


def _fast_struct() -> struct.Struct:
    parts = []
    position = 0
    for f in FIELDS:
        if f.key not in _PICK:
            continue
        parts.append(f"{f.start - position}x" if f.start > position else "")
        parts.append(_PICK[f.key])
        position = f.start + (8 if f.key == "reserved" else f.width)
    return struct.Struct("".join(parts))


_FAST = _fast_struct()
_CREDIT = {b"C": 1, b"D": -1}    # settleAmt and netAmt: C credits the merchant
_CHARGE = {b"D": 1, b"C": -1}    # merFee: D charges the merchant
_CODE_TYPES = {code.encode(): kind for code, kind in TYPE_BY_CODE.items()}
_TXN_TYPES = {code.encode(): kind for code, kind in TYPE_BY_TXN_TYPE.items()}
_BLANK_ORDER = b" " * 32
_BLANK_QUERY = b" " * 21
_BLANK_DATE = b" " * 8


_POSITIONAL = ("rail", "line_number", "record_type", "rail_reference", "reference", "gross", "fee", "net",
               "currency", "transaction_date", "settlement_date", "rrn")
_Make = Callable[[str, int, RecordType, str, str, int, int, int, str, dt.date, dt.date, str], SettlementRecord]


def _record_maker() -> _Make:
    """A faster way to build :class:`SettlementRecord` for the parser.

    The frozen dataclass sets each of its 17 fields through ``object.__setattr__``,
    which is half the cost of a parsed line. Setting its slots directly is about three
    times faster. That is used only while the class still has the slots and defaults
    we know and a sample built both ways compares equal; otherwise the class itself.
    """
    cls = SettlementRecord
    try:
        fields = dataclasses.fields(cls)
        extra = fields[len(_POSITIONAL):]
        if (tuple(f.name for f in fields[:len(_POSITIONAL)]) != _POSITIONAL
                or any(f.default is dataclasses.MISSING for f in extra)):
            return cls
        (set_rail, set_line, set_kind, set_rail_ref, set_ref, set_gross, set_fee, set_net, set_currency,
         set_txn_date, set_settle_date, set_rrn) = (cls.__dict__[name].__set__ for name in _POSITIONAL)
        rest = [(cls.__dict__[f.name].__set__, f.default) for f in extra]
    except (KeyError, AttributeError, ValueError):
        return cls
    new = object.__new__

    def make(  # noqa: PLR0917 - the order of SettlementRecord's own fields
            rail: str, line: int, kind: RecordType, rail_reference: str, reference: str, gross: int,
            fee: int, net: int, currency: str, txn_date: dt.date, settle_date: dt.date,
            rrn: str) -> SettlementRecord:
        record = new(cls)
        set_rail(record, rail)
        set_line(record, line)
        set_kind(record, kind)
        set_rail_ref(record, rail_reference)
        set_ref(record, reference)
        set_gross(record, gross)
        set_fee(record, fee)
        set_net(record, net)
        set_currency(record, currency)
        set_txn_date(record, txn_date)
        set_settle_date(record, settle_date)
        set_rrn(record, rrn)
        for setter, default in rest:
            setter(record, default)
        return record

    day = dt.date(2000, 1, 1)
    sample = (RAIL, 1, RecordType.PAYMENT, "Q", "R", 10, 1, 9, CURRENCY, day, day, "1")
    try:
        return make if make(*sample) == cls(*sample) else cls
    except (AttributeError, TypeError):
        return cls


_make_record = _record_maker()


class _LineError(Exception):
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason


def _bad(key: str, problem: str, value: bytes = b"") -> _LineError:
    f = BY_KEY[key]
    shown = f" {value.decode('latin-1')!r}" if value else ""
    return _LineError(key, f"field {f.number} {f.name} ({key}){shown}: {problem}")


def settlement_date_from_name(name: str) -> dt.date | None:
    """The clearing date in a ZM file name ``INN<yymmdd><nn>ZM_<merId>``, if any."""
    match = _NAME.search(name)
    if not match:
        return None
    try:
        return dt.date(2000 + int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def _batches(stream: BinaryIO, rail: str = RAIL) -> Iterator[list[bytes]]:
    """The file's lines (without ``\\n``; a ``\\r`` before it is kept) in batches,
    read 1 MiB at a time so that splitting runs in C. :class:`MalformedFile` naming
    the line when 1 MiB passes without a line break (every complete line before it
    has been yielded by then)."""
    carry = b""
    lines_before = 0
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            if carry:
                yield [carry]
            return
        lines = (carry + chunk).split(b"\n") if carry else chunk.split(b"\n")
        carry = lines.pop()
        if lines:
            lines_before += len(lines)
            yield lines
        if len(carry) > _MAX_LINE_RUN:
            line = lines_before + 1
            raise MalformedFile(f"line {line}: {len(carry)} bytes without a line break: not a ZM file",
                                rail=rail, line_number=line, field_name="record")


def _check_text(line: bytes) -> None:
    try:
        line.decode("gbk")
    except UnicodeDecodeError as exc:
        f = field_at(exc.start)
        raise _LineError(f.key, f"field {f.number} {f.name} ({f.key}): bytes not valid GBK at "
                                f"byte {exc.start + 1}") from exc


def _check_length(line: bytes) -> bytes:
    if line.endswith(b"\r"):
        line = line[:-1]
    size = len(line)
    if size == RECORD_LENGTH:
        return line
    if size > RECORD_LENGTH:
        raise _LineError("record", f"record is {size} bytes, longer than {RECORD_LENGTH}")
    if size >= MIN_RECORD_LENGTH:
        return line.ljust(RECORD_LENGTH)
    f = field_at(size)
    raise _LineError(f.key, f"field {f.number} {f.name} ({f.key}): record ends after {size} "
                            f"bytes, inside this field (records are {RECORD_LENGTH} bytes)")


def parse_zm(  # noqa: PLR0912, PLR0915 - the per-line loop stays in one frame for speed
        stream: BinaryIO, *, settlement_date: dt.date | None = None,
             max_consecutive_errors: int = 100, rail: str = RAIL,
             ) -> Iterator[SettlementRecord | RecordError]:
    """Stream ``stream`` as a ZM file: one record or error per non-blank line, in order.

    ``settlement_date`` is the clearing date for lines that do not carry one.
    """
    unpack = _FAST.unpack_from
    make = _make_record
    settle_dates: dict[bytes, dt.date] = {}
    txn_dates: dict[bytes, dict[bytes, dt.date]] = {}
    records = errors = in_a_row = number = 0
    first_error: RecordError | None = None
    for batch in _batches(stream, rail):
        for framed in batch:
            number += 1
            size = len(framed)
            try:
                if (size == _CRLF_RECORD and framed[-1] == _CR) or size == RECORD_LENGTH:
                    line = framed     # unpack_from ignores a trailing CR: no copy needed
                elif size == 0 or (size == 1 and framed[0] == _CR):
                    continue
                else:
                    line = _check_length(framed)
                text = "ascii"
                if not line.isascii():
                    _check_text(line)
                    text = "gbk"
                (code, trace, mmdd, hms, amount, query_id, order_id, fee_dir, fee, settle_dir,
                 settle, txn_type, orig_query, net_dir, net, orig_order, settled) = unpack(line)
                kind = _CODE_TYPES.get(code) or _TXN_TYPES.get(txn_type)
                if kind is None:
                    raise _bad("txnCode", "unknown transaction code (and txnType)", code + b"/" + txn_type)
                if not amount.isdigit():
                    raise _bad("txnAmt", "not a number", amount)
                sign = _CREDIT.get(settle_dir)
                if sign is None or not settle.isdigit():
                    raise _bad("settleAmt", "not C/D and 12 digits", settle_dir + settle)
                fee_sign = _CHARGE.get(fee_dir)
                if fee_sign is None or not fee.isdigit():
                    raise _bad("merFee", "not C/D and 12 digits", fee_dir + fee)
                net_sign = _CREDIT.get(net_dir)
                if net_sign is None or not net.isdigit():
                    raise _bad("netAmt", "not C/D and 12 digits", net_dir + net)
                gross = sign * int(amount)
                fee_value = fee_sign * int(fee)
                net_value = net_sign * int(net)
                if gross - fee_value != net_value:
                    raise _bad("netAmt", f"gross {gross} - fee {fee_value} is not net {net_value}")
                reference = (orig_order if orig_order != _BLANK_ORDER else order_id).strip().decode(text)
                if not reference:
                    raise _bad("orderId", "blank")
                rail_reference = (orig_query if orig_query != _BLANK_QUERY else query_id).strip().decode(text)
                if not rail_reference:
                    raise _bad("queryId", "blank")
                settle_date = settle_dates.get(settled)
                if settle_date is None:
                    settle_date = _settle_date(settled, settlement_date)
                    if len(settle_dates) >= _CACHE_LIMIT:
                        settle_dates.clear()
                        txn_dates.clear()
                    settle_dates[settled] = settle_date
                by_day = txn_dates.get(settled)
                if by_day is None:
                    by_day = txn_dates[settled] = {}
                txn_date = by_day.get(mmdd)
                if txn_date is None:
                    txn_date = by_day[mmdd] = _txn_date(mmdd, settle_date)
                rrn = trace + mmdd + hms
                if not rrn.isdigit():
                    raise _bad("traceNo", "system trace and transmission time must be digits", rrn)
                records += 1
                in_a_row = 0
                yield make(rail, number, kind, rail_reference, reference, gross, fee_value, net_value,
                           CURRENCY, txn_date, settle_date, rrn.decode("ascii"))
                continue
            except _LineError as exc:
                error = RecordError(rail, number, exc.key, exc.reason,
                                    framed[:RECORD_LENGTH].decode("gbk", errors="replace"))
            except UnicodeDecodeError as exc:
                error = RecordError(rail, number, "orderId", f"reference is not valid {exc.encoding}")
            errors += 1
            in_a_row += 1
            if first_error is None:
                first_error = error
            yield error
            if in_a_row > max_consecutive_errors:
                raise MalformedFile(f"{in_a_row} bad lines in a row up to line {number}: not a usable "
                                    "ZM file", rail=rail, line_number=number, field_name=error.field)
    if records == 0:
        if first_error is None:
            # Nothing but blank lines: what is missing is a record, starting with its first field.
            raise MalformedFile("the ZM file is empty: no record on line 1", rail=rail, line_number=1,
                                field_name=FIELDS[0].key)
        raise MalformedFile(f"the ZM file has no line that is a ZM record (first bad line "
                            f"{first_error.line_number}: {first_error.reason})", rail=rail,
                            line_number=first_error.line_number, field_name=first_error.field)


def _settle_date(settled: bytes, default: dt.date | None) -> dt.date:
    if settled == _BLANK_DATE:
        if default is None:
            raise _bad("reserved", "no clearing date in the line or the file name")
        return default
    if settled.isdigit():
        try:
            return dt.date(int(settled[:4]), int(settled[4:6]), int(settled[6:]))
        except ValueError:
            pass
    raise _bad("reserved", "clearing date is not YYYYMMDD", settled)


def _txn_date(mmdd: bytes, settle_date: dt.date) -> dt.date:
    if mmdd.isdigit():
        month, day = int(mmdd[:2]), int(mmdd[2:])
        for year in range(settle_date.year, settle_date.year - 8, -1):
            try:
                candidate = dt.date(year, month, day)
            except ValueError:
                continue
            if candidate <= settle_date:
                return candidate
    raise _bad("traceTime", "not a valid MMDDhhmmss", mmdd)


def read_zm_fields(stream: BinaryIO, *, max_consecutive_errors: int = 100
                   ) -> Iterator[tuple[int, dict[str, str]] | RecordError]:
    """Every field of every line, decoded from GBK and stripped: (line number, {key:
    value}), or a :class:`RecordError`. For inspection and tests; :func:`parse_zm` is
    the fast path."""
    in_a_row = number = 0
    for framed in (line for batch in _batches(stream) for line in batch):
        number += 1
        if not framed.strip(b"\r"):
            continue
        try:
            line = _check_length(framed)
            _check_text(line)
            values = {}
            for f in FIELDS:
                try:
                    values[f.key] = line[f.start:f.end].decode("gbk").strip()
                except UnicodeDecodeError as exc:
                    raise _bad(f.key, "a character is cut at the field boundary") from exc
            in_a_row = 0
            yield number, values
        except _LineError as exc:
            in_a_row += 1
            yield RecordError(RAIL, number, exc.key, exc.reason)
            if in_a_row > max_consecutive_errors:
                raise MalformedFile(f"{in_a_row} bad lines in a row", rail=RAIL, line_number=number,
                                    field_name=exc.key) from None


# -- writing ----------------------------------------------------------------------

_BLANKS = [b" " * f.width for f in FIELDS]


def _fit(f: ZmField, value: str) -> bytes:
    try:
        data = value.encode("gbk")
    except UnicodeEncodeError as exc:
        raise ValueError(f"ZM field {f.key} ({f.name}): {value!r} is not GBK text") from exc
    if len(data) > f.width:
        if not f.text:
            raise ValueError(f"ZM field {f.key} ({f.name}): {value!r} is wider than {f.width} bytes")
        data = data[:f.width].decode("gbk", errors="ignore").encode("gbk")
    return data.ljust(f.width)


def format_zm_line(values: Mapping[str, str]) -> bytes:
    """One record (without its line break) from field values by ACP key; fields not
    given are blank. Numbers must come formatted; text is space padded to its width.
    :class:`ValueError` when a value does not fit (free text is shortened instead)."""
    parts = list(_BLANKS)
    for key, value in values.items():
        f = BY_KEY.get(key)
        if f is None:
            raise ValueError(f"ZM has no field {key!r}")
        parts[f.number - 1] = _fit(f, value)
    return SEPARATOR.join(parts)


_TEMPLATE = " ".join(f"%-{f.width}s" for f in FIELDS)
_INDEX = {f.key: f.number - 1 for f in FIELDS}


def _line(values: Mapping[str, str]) -> bytes:
    """:func:`format_zm_line`, formatting plain ASCII lines in one step."""
    row = [""] * len(FIELDS)
    for key, value in values.items():
        index = _INDEX.get(key)
        if index is None:
            raise ValueError(f"ZM has no field {key!r}")
        row[index] = value
    text = _TEMPLATE % tuple(row)
    # Any value too wide, or any GBK character, changes the length: take the checked path.
    if len(text) == RECORD_LENGTH and text.isascii():
        return text.encode("ascii")
    return format_zm_line(values)


def _signed(value: int, positive: str, negative: str) -> str:
    return f"{positive if value >= 0 else negative}{abs(value):012d}"


def zm_values(record: SettlementRecord, sequence: int, settlement_date: dt.date,
              mer_id: str = "") -> dict[str, str]:
    """The field values of ``record`` as line ``sequence`` of the file for
    ``settlement_date`` (the inverse of the parser's mapping)."""
    return _values(record, sequence, settlement_date, f"{settlement_date:%Y%m%d}", mer_id)


def _values(record: SettlementRecord, sequence: int, settlement_date: dt.date, settled: str,
            mer_id: str) -> dict[str, str]:
    if record.currency != CURRENCY:
        raise ValueError(f"ZM files are in {CURRENCY}; record {record.reference} is {record.currency}")
    if record.gross - record.fee != record.net:
        raise ValueError(f"record {record.reference}: gross - fee != net")
    day = record.transaction_date
    if not day <= settlement_date < day + _YEAR:
        raise ValueError(f"record {record.reference}: transaction date {day} "
                         f"does not fit clearing date {settlement_date}")
    code, txn_type, sub_type, biz_type = WRITE_CODES[record.record_type]
    mmdd = f"{day.month:02d}{day.day:02d}"
    rrn = record.rrn
    if not (len(rrn) == 16 and rrn.isdigit() and rrn[6:10] == mmdd):
        rrn = f"{sequence % 1_000_000:06d}{mmdd}000000"
    return {
        "txnCode": code, "traceNo": rrn[:6], "traceTime": rrn[6:], "txnAmt": f"{abs(record.gross):012d}",
        "queryId": record.rail_reference, "orderId": record.reference,
        "merFee": _signed(record.fee, "D", "C"), "settleAmt": _signed(record.gross, "C", "D"),
        "txnType": txn_type, "txnSubType": sub_type, "bizType": biz_type, "merId": mer_id,
        "netAmt": _signed(record.net, "C", "D"), "reserved": settled,
    }


_YEAR = dt.timedelta(days=366)


def write_zm(out: BinaryIO, records: Iterable[SettlementRecord], *, settlement_date: dt.date,
             mer_id: str = "",
             details: Callable[[SettlementRecord], Mapping[str, str]] | None = None) -> int:
    """Write ``records`` as ZM lines (CR LF terminated) for clearing date
    ``settlement_date``; returns how many were written. ``details`` may add fields the
    record does not hold (sub-merchant, masked card number...) by ACP key.
    :class:`ValueError` for a record the format cannot hold (not CNY, gross - fee !=
    net, a reference wider than its field, a transaction date after the clearing date
    or more than a year before it)."""
    settled = f"{settlement_date:%Y%m%d}"
    count = 0
    batch: list[bytes] = []
    for record in records:
        count += 1
        values = _values(record, count, settlement_date, settled, mer_id)
        if details is not None:
            values.update(details(record))
        batch.append(_line(values) + b"\r\n")
        if len(batch) >= 4096:
            out.write(b"".join(batch))
            batch.clear()
    if batch:
        out.write(b"".join(batch))
    return count
