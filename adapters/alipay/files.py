"""Alipay's cross-border settlement file: a streaming parser and the writer.

Layout (UTF-8 text, one record per line, ``|`` between fields, first line the
header)::

    Partner_transaction_id|Transaction_id|Amount|Rmb_amount|Fee|Settlement|Rmb_settlement|Currency|Rate|Payment_time|Settlement_time|Type|Status|Remarks

* ``Partner_transaction_id``: our reference (the sale's ``out_trade_no``, the
  pre-authorization's ``out_order_no`` for its captures, the refund's
  ``out_request_no``, the transfer's ``out_biz_no``); ``Transaction_id``: Alipay's
  (a sale's or a capture's own ``trade_no``, the refunded trade's for a refund, the
  transfer's ``order_id``). It is the record's ``rail_reference``, and for payments
  and transfers, where it names the settled operation itself, its ``rrn`` too: a
  capture of a pre-authorization is found by it (its expectation names the
  ``auth_no`` as rail reference and the capture's ``trade_no`` as RRN).
* ``Amount``, ``Fee``, ``Settlement`` are in ``Currency`` (the price currency), as
  decimal strings in its major unit; ``Settlement`` = ``Amount`` - ``Fee``.
  ``Rmb_amount`` and ``Rmb_settlement`` are the same in CNY at ``Rate`` (CNY per unit of
  ``Currency``). Domestic CNY records leave ``Rate`` empty.
* ``Payment_time`` / ``Settlement_time``: ``YYYY-MM-DD HH:MM:SS``, Beijing time.
* ``Type``: ``P`` payment, ``R`` refund (Alipay's own); this service's files also use
  ``C`` chargeback, ``A`` adjustment and ``T`` transfer (payout). Everything but a
  payment takes money back: its ``Settlement`` is negative, and its ``Amount`` may be
  written with or without the minus sign (it is read as negative either way).
* ``Status``: ``L`` liquidated. ``Remarks``: free text, ignored.

Real files may carry more columns after ``Remarks`` (Alipay adds merchant and
order-scene fields per product); the header names them and they are ignored.

The parser reads line by line with a bounded line length, so memory stays flat
however large (or however broken) the file is. Amounts are converted exactly from
their digit strings to integer minor units; a value with more decimals than the
currency has is an error, never rounded.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import BinaryIO

from adapters.base import RecordError, RecordType, SettlementRecord

from .codec import EXPONENTS, HOME_CURRENCY, RAIL, convert, format_rate, to_major
from .file_format import COLUMNS, HEADER, MAX_CONSECUTIVE_ERRORS, TYPE_CODES, TYPE_LETTERS
from .file_parser import parse_lines

__all__ = ["COLUMNS", "HEADER", "TYPE_CODES", "format_record", "parse_settlement", "write_settlement"]


def parse_settlement(stream: BinaryIO, *, rail: str = RAIL,
                     max_consecutive_errors: int = MAX_CONSECUTIVE_ERRORS,
                     ) -> Iterator[SettlementRecord | RecordError]:
    """Yield one :class:`SettlementRecord` or :class:`RecordError` per data line, in file
    order; line numbers count the header as line 1. Blank lines are skipped.

    Raises :class:`MalformedFile` when the file is empty, does not start with the
    header, has more than ``max_consecutive_errors`` bad lines in a row, or has a line
    that does not end within a megabyte. The header is checked on the first ``next()``
    so a garbage file fails before anything else is read.
    """
    return parse_lines(stream, rail, max_consecutive_errors)


# -- writing ----------------------------------------------------------------------

_BATCH = 2048


def _major(minor: int, currency: str) -> str:
    # The two-decimal case written inline: it is nearly every amount of every file.
    if type(minor) is int and EXPONENTS.get(currency) == 2:
        if minor >= 0:
            whole, cents = divmod(minor, 100)
            return f"{whole}.{cents:02d}"
        whole, cents = divmod(-minor, 100)
        return f"-{whole}.{cents:02d}"
    return to_major(minor, currency)


def format_record(record: SettlementRecord, rates: dict[Decimal, str] | None = None) -> str:
    """One record as a file line (without the newline). Raises ValueError for a record
    the layout cannot express exactly. ``rates`` caches formatted rates across lines."""
    letter = TYPE_LETTERS.get(record.record_type)
    if letter is None:
        raise ValueError(f"no settlement file type for {record.record_type}")
    for text in (record.reference, record.rail_reference, record.status):
        if "|" in text or "\n" in text or "\r" in text:
            raise ValueError(f"field {text!r} contains a separator")
    if not record.reference or not record.rail_reference:
        raise ValueError("a settlement record needs both references")
    if record.gross - record.fee != record.net:
        raise ValueError(f"record {record.reference}: gross - fee != net")
    if (record.gross < 0) if record.record_type is RecordType.PAYMENT else (record.gross > 0):
        raise ValueError(f"record {record.reference}: a {record.record_type} with the wrong sign")
    if record.fx_rate is None:
        if record.currency != HOME_CURRENCY or record.settlement_amount is not None:
            raise ValueError(f"record {record.reference}: a {record.currency} record needs its CNY rate")
        rmb_gross, rmb_net, rate = record.gross, record.net, ""
    else:
        if record.settlement_amount is None or record.settlement_currency != HOME_CURRENCY:
            raise ValueError(f"record {record.reference}: converted records settle in CNY")
        rmb_gross = convert(record.gross, record.currency, record.fx_rate, HOME_CURRENCY)
        rmb_net = record.settlement_amount
        rate = (rates or {}).get(record.fx_rate) or format_rate(record.fx_rate)
        if rates is not None and len(rates) < _BATCH:
            rates[record.fx_rate] = rate
    currency = record.currency
    return "|".join((
        record.reference, record.rail_reference, _major(record.gross, currency), _major(rmb_gross, HOME_CURRENCY),
        _major(record.fee, currency), _major(record.net, currency), _major(rmb_net, HOME_CURRENCY), currency,
        rate, f"{record.transaction_date.isoformat()} 00:00:00", f"{record.settlement_date.isoformat()} 00:00:00",
        letter, record.status or "L", "",
    ))


def write_settlement(out: BinaryIO, records: Iterable[SettlementRecord]) -> int:
    """Write the header and one line per record (``\\n`` line ends, UTF-8). Returns the
    number of records written. Streams: memory does not grow with ``records``."""
    out.write(HEADER.encode("ascii") + b"\n")
    count = 0
    batch: list[str] = []
    rates: dict[Decimal, str] = {}
    for record in records:
        batch.append(format_record(record, rates))
        count += 1
        if len(batch) >= _BATCH:
            batch.append("")
            out.write("\n".join(batch).encode("utf-8"))
            batch.clear()
    if batch:
        batch.append("")
        out.write("\n".join(batch).encode("utf-8"))
    return count
