"""Layout of the Mir-style acquirer register (described in :mod:`adapters.mir.files`)
and its writer."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable
from typing import BinaryIO

from adapters.base import RecordType, SettlementRecord
from adapters.mir.terms import CURRENCY, CURRENCY_NUMERIC
from adapters.packed import Packed

COLUMNS = ("RECORD_TYPE", "RRN", "ORIGINAL_RRN", "AUTH_CODE", "MASKED_PAN", "AMOUNT", "CURRENCY",
           "TRANSACTION_DATE", "SETTLEMENT_DATE", "FEE", "NET", "REFERENCE")
HEADER = ";".join(COLUMNS)
TRAILER_TAG = "TOTAL"

RECORD_TYPE_CODES = {t: t.name for t in RecordType}

_ID = re.compile(r"[A-Za-z0-9]{1,32}", re.ASCII)
_AUTH = re.compile(r"[A-Za-z0-9]{0,6}", re.ASCII)
_MASK = re.compile(r"(?:\d{6}\*{3,9}\d{4})?", re.ASCII)
_REFERENCE = re.compile(r"[\x21-\x3a\x3c-\x7e]{0,64}", re.ASCII)   # printable ASCII but ';'


@dataclasses.dataclass(frozen=True, slots=True)
class MirSettlementRecord(SettlementRecord):
    """A register line: the SPI's record plus the two columns it has no field for."""

    auth_code: str = ""
    masked_pan: str = ""


class PackedRecord(Packed, MirSettlementRecord):
    """A :class:`MirSettlementRecord` whose field values live in one tuple (see
    :mod:`adapters.packed`): the parser builds these, one tuple and one slot write
    per record instead of 19 field writes."""

    __slots__ = ("_values",)


FIELD_NAMES = PackedRecord.field_names
#: Writes the slot directly, past the frozen ``__setattr__``.
set_values = PackedRecord.store


def write_register(out: BinaryIO, records: Iterable[SettlementRecord]) -> int:
    """Write the header, one line per record (in the given order) and the trailer to
    ``out``; return the number of records. Streams: ``records`` may be a generator of
    any length. Raises :class:`ValueError` for a record the register cannot carry
    (another currency, a full card number, a ``;`` in a value...), before writing it."""
    out.write((HEADER + "\n").encode("ascii"))
    dates: dict[dt.date, str] = {}
    batch: list[str] = []
    count = 0
    net_total = 0
    for record in records:
        batch.append(_line(record, dates))
        count += 1
        net_total += record.net
        if len(batch) >= 8192:
            out.write("".join(batch).encode("ascii"))
            batch.clear()
    batch.append(f"{TRAILER_TAG};{count};{net_total}\n")
    out.write("".join(batch).encode("ascii"))
    return count


def _line(record: SettlementRecord, dates: dict[dt.date, str]) -> str:
    rrn = record.rrn or record.rail_reference
    auth_code = record.auth_code if isinstance(record, MirSettlementRecord) else ""
    masked_pan = record.masked_pan if isinstance(record, MirSettlementRecord) else ""
    where = f"record {record.reference!r} ({record.record_type.value})"
    if record.currency != CURRENCY:
        raise ValueError(f"{where}: the register carries {CURRENCY} only, not {record.currency}")
    if not (_ID.fullmatch(rrn) and _ID.fullmatch(record.rail_reference)):
        raise ValueError(f"{where}: RRNs must be 1-32 letters or digits")
    if not _AUTH.fullmatch(auth_code):
        raise ValueError(f"{where}: auth code must be up to 6 letters or digits")
    if not _MASK.fullmatch(masked_pan):
        raise ValueError(f"{where}: the card number must be masked (6 digits, *, 4 digits)")
    if not _REFERENCE.fullmatch(record.reference):
        raise ValueError(f"{where}: reference must be up to 64 printable ASCII characters without ';'")
    if record.gross - record.fee != record.net:
        raise ValueError(f"{where}: gross - fee != net")
    transaction_date = dates.get(record.transaction_date) or _date(record.transaction_date, dates)
    settlement_date = dates.get(record.settlement_date) or _date(record.settlement_date, dates)
    return (f"{RECORD_TYPE_CODES[record.record_type]};{rrn};{record.rail_reference};{auth_code};"
            f"{masked_pan};{record.gross};{CURRENCY_NUMERIC};{transaction_date};{settlement_date};"
            f"{record.fee};{record.net};{record.reference}\n")


def _date(day: dt.date, cache: dict[dt.date, str]) -> str:
    text = cache[day] = day.strftime("%d.%m.%Y")
    return text

