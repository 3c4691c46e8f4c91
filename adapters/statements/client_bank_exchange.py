"""1CClientBankExchange reader: the Russian bank-client exchange text format.

A file is ``key=value`` lines in sections::

    1CClientBankExchange
    ВерсияФормата=1.03
    Кодировка=Windows
    ...
    РасчСчет=40702810900000000001
    СекцияРасчСчет
    ДатаНачала=01.03.2024
    РасчСчет=40702810900000000001
    НачальныйОстаток=1000.00
    ...
    КонецРасчСчет
    СекцияДокумент=Платежное поручение
    Номер=15
    Сумма=1234.56
    ...
    КонецДокумента
    КонецФайла

Rules:

* The encoding is ``Кодировка``: ``Windows`` is cp1251, ``DOS`` is cp866. The
  header is also checked against the bytes: the encoding in which its keys read as
  the format's keys is the one in use. A header whose keys read in neither, or a
  ``Кодировка`` that names the other encoding than the bytes are in, makes the
  file unusable (its text would come out garbled). Without ``Кодировка`` the
  bytes decide.
* Amounts are rubles with a dot and at most two decimals (``1234.56`` -> 123456
  kopecks); the format has no currency field, every amount is RUB.
* Our accounts are the ``РасчСчет`` values of the header and of each
  ``СекцияРасчСчет`` (plus any the caller names). A document is a credit when our
  account is the receiver (``ПолучательСчет``) and a debit when it is the payer
  (``ПлательщикСчет``); a transfer between two of our accounts gives both, the
  debit as ``sub_index`` 1 and the credit as 2. Its booking (and value) date is
  ``ДатаСписано`` for a debit and ``ДатаПоступило`` for a credit, ``None`` when the
  bank left it empty; documents in a statement are booked.
* ``СекцияРасчСчет`` gives ``НачальныйОстаток`` as an ``OPBD`` balance and
  ``КонечныйОстаток`` as ``CLBD``; the statement id is ``account:start..end``.
* The file is read line by line. A bad document or stray line becomes an error
  item and reading goes on; more than ``max_consecutive_errors`` bad items in a
  row, a line longer than 64 KiB, or a missing header make the file unusable. A
  file that ends without ``КонецФайла`` (truncated) ends with an error item.
* Every :class:`UnusableStatement` names a line and a field: the key it was
  reading or expected (``1CClientBankExchange`` on line 1 of an empty file,
  ``Кодировка`` for an encoding that does not fit, ``СекцияРасчСчет`` when no
  section follows the header), or ``line`` for a line too long to read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from adapters.statements.base import (
    CLOSING_BOOKED,
    OPENING_BOOKED,
    AmountError,
    Direction,
    EntryStatus,
    StatementBalance,
    StatementFormat,
    StatementItem,
    StatementLine,
    StatementLineError,
    UnusableStatement,
    parse_amount,
)

FORMAT = StatementFormat.CLIENT_BANK_EXCHANGE
MAGIC = b"1CClientBankExchange"
#: The format carries no currency: every amount is in rubles.
CURRENCY = "RUB"
#: ``Кодировка`` values (compared case-insensitively) and the codecs they name.
ENCODINGS = {"windows": "cp1251", "dos": "cp866"}
MAX_LINE_BYTES = 64 * 1024
MAX_HEADER_LINES = 1000
MAX_DOCUMENT_LINES = 500

_HEADER_KEYS = frozenset({
    "ВерсияФормата", "Кодировка", "Отправитель", "Получатель", "ДатаСоздания", "ВремяСоздания",
    "ДатаНачала", "ДатаКонца", "РасчСчет", "Документ",
})
_SECTION_STARTS = ("СекцияРасчСчет", "СекцияДокумент", "КонецФайла")
_REQUIRED = ("Номер", "Дата", "Сумма")


@dataclass
class _Section:
    """A section being collected: where it opened and its ``key=value`` fields."""

    line_number: int
    kind: str
    fields: dict[str, str] = field(default_factory=dict)


def parse_client_bank_exchange(stream: BinaryIO, *, accounts: Collection[str] = (),
                               max_consecutive_errors: int = 100) -> Iterator[StatementItem]:
    """Stream the items of a 1CClientBankExchange file (see the module docstring).

    The header is read before this returns, so a file that is not in the format
    (no ``1CClientBankExchange`` first line, unknown encoding) raises
    :class:`UnusableStatement` at once.
    """
    reader = _Reader(stream)
    first = reader.next_raw()
    if first is None:
        raise UnusableStatement("the file is empty: no 1CClientBankExchange on line 1", line_number=1,
                                field_name="1CClientBankExchange")
    if first.removeprefix(b"\xef\xbb\xbf").strip() != MAGIC:
        raise UnusableStatement("the first line is not 1CClientBankExchange", line_number=1,
                                field_name="1CClientBankExchange")
    header: list[bytes] = []
    while True:
        raw = reader.next_raw()
        if raw is None or any(_key(raw, enc) in _SECTION_STARTS for enc in ENCODINGS.values()):
            break
        header.append(raw)
        if len(header) > MAX_HEADER_LINES:
            raise UnusableStatement(f"no section after {MAX_HEADER_LINES} header lines",
                                    line_number=reader.line_number, field_name="СекцияРасчСчет")
    encoding = _encoding(header if raw is None else [*header, raw])
    fields: dict[str, str] = {}
    ours = set(accounts)
    stray: list[StatementLineError] = []
    for number, line in enumerate(header, start=2):
        try:
            key, has_value, value = line.decode(encoding).partition("=")
        except UnicodeDecodeError:
            raise UnusableStatement(f"header line {number} has bytes that are not {encoding}",
                                    line_number=number, field_name=_key(line, encoding)) from None
        key, value = key.strip(), value.strip()
        if has_value:
            fields[key] = value
            if key == "РасчСчет" and value:
                ours.add(value)
        elif key:
            stray.append(StatementLineError(format=FORMAT, line_number=number, field=key,
                                            reason="not a key=value header line", raw=key[:200]))
    period = f"{fields.get('ДатаНачала', '')}..{fields.get('ДатаКонца', '')}"
    body = _Body(reader, encoding, ours, period, max_consecutive_errors)
    return body.items(raw, stray)


class _Reader:
    """Bounded line reading with line numbers."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.line_number = 0

    def next_raw(self) -> bytes | None:
        raw = self._stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return None
        self.line_number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise UnusableStatement(f"line {self.line_number} is longer than {MAX_LINE_BYTES} bytes",
                                    line_number=self.line_number, field_name="line")
        return raw.rstrip(b"\r\n")


def _key(raw: bytes, encoding: str) -> str:
    return raw.decode(encoding, errors="replace").partition("=")[0].strip()


def _encoding(header: list[bytes]) -> str:
    """The encoding the header's keys (and the first section line) are written in,
    checked against ``Кодировка``. ``header`` starts on line 2."""
    known = _HEADER_KEYS | set(_SECTION_STARTS)
    hits = {enc: sum(_key(raw, enc) in known for raw in header) for enc in ENCODINGS.values()}
    detected = max(hits, key=lambda enc: hits[enc])
    if hits[detected] == 0:
        raise UnusableStatement("the header keys read neither as cp1251 (Windows) nor cp866 (DOS)",
                                line_number=2, field_name="Кодировка")
    declared = next(((number, raw.decode(detected, errors="replace").partition("=")[2].strip())
                     for number, raw in enumerate(header, start=2) if _key(raw, detected) == "Кодировка"),
                    None)
    if declared is not None and ENCODINGS.get(declared[1].casefold()) != detected:
        raise UnusableStatement(f"Кодировка={declared[1]} but the file is written in {detected}",
                                line_number=declared[0], field_name="Кодировка")
    return detected


def _date(fields: dict[str, str], key: str, *, required: bool = False) -> dt.date | None:
    text = fields.get(key, "")
    if not text:
        if required:
            raise _BadField(key, "missing")
        return None
    try:
        return dt.datetime.strptime(text, "%d.%m.%Y").date()  # noqa: DTZ007 - a calendar day, no time
    except ValueError:
        raise _BadField(key, f"{text!r} is not a DD.MM.YYYY date") from None


class _BadField(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


class _Body:
    """The section state machine after the header."""

    def __init__(self, reader: _Reader, encoding: str, ours: set[str], period: str,
                 max_consecutive_errors: int) -> None:
        self.reader = reader
        self.encoding = encoding
        self.ours = ours
        self.period = period
        self.max_errors = max_consecutive_errors
        self.errors_in_a_row = 0
        self.statements: dict[str, str] = {}

    def error(self, line_number: int, field: str, reason: str, raw: str = "") -> StatementLineError:
        self.errors_in_a_row += 1
        if self.errors_in_a_row > self.max_errors:
            raise UnusableStatement(f"{self.errors_in_a_row} bad lines in a row, last at line {line_number}",
                                    line_number=line_number, field_name=field)
        return StatementLineError(format=FORMAT, line_number=line_number, field=field, reason=reason,
                                  raw=raw[:200])

    def statement_id(self, account: str) -> str:
        return self.statements.get(account) or f"{account}:{self.period}"

    def items(self, raw: bytes | None, header_errors: list[StatementLineError]) -> Iterator[StatementItem]:
        yield from header_errors
        section: _Section | None = None
        while raw is not None:
            number = self.reader.line_number
            try:
                line = raw.decode(self.encoding).strip()
            except UnicodeDecodeError:
                yield self.error(number, _key(raw, self.encoding) or "line", f"bytes that are not {self.encoding}")
                raw = self.reader.next_raw()
                continue
            key, has_value, value = line.partition("=")
            key, value = key.strip(), value.strip()
            if section is not None and key in ("КонецДокумента", "КонецРасчСчет"):
                yield from self.close(section, key)
                section = None
            elif key in ("СекцияДокумент", "СекцияРасчСчет", "КонецФайла"):
                if section is not None:
                    yield self.error(section.line_number, section.kind, "section is not closed")
                if key == "КонецФайла":
                    return
                section = _Section(number, key if key == "СекцияРасчСчет" else value or key)
            elif section is not None and has_value:
                section.fields[key] = value
                if len(section.fields) > MAX_DOCUMENT_LINES:
                    yield self.error(section.line_number, section.kind, "section has too many fields")
                    section = None
            elif line:
                reason = "not a key=value line" if section is not None else "line outside any section"
                yield self.error(number, key, reason, line)
            raw = self.reader.next_raw()
        if section is not None:
            yield self.error(section.line_number, section.kind, "section is not closed")
        yield self.error(self.reader.line_number, "КонецФайла", "file ends without КонецФайла (truncated?)")

    def close(self, section: _Section, end: str) -> Iterator[StatementItem]:
        expected = "КонецРасчСчет" if section.kind == "СекцияРасчСчет" else "КонецДокумента"
        if end != expected:
            yield self.error(self.reader.line_number, end, f"{section.kind} closed by {end}")
            return
        try:
            items = self.account_section(section) if end == "КонецРасчСчет" else self.document(section)
        except _BadField as bad:
            yield self.error(section.line_number, bad.field, bad.reason, section.fields.get(bad.field, ""))
            return
        self.errors_in_a_row = 0
        yield from items

    def account_section(self, section: _Section) -> list[StatementItem]:
        fields = section.fields
        account = fields.get("РасчСчет", "")
        if not account:
            raise _BadField("РасчСчет", "missing")
        start, end = _date(fields, "ДатаНачала"), _date(fields, "ДатаКонца")
        self.ours.add(account)
        self.statements[account] = (f"{account}:{fields.get('ДатаНачала', '')}.."
                                    f"{fields.get('ДатаКонца', '')}")
        balances: list[StatementItem] = []
        for key, code, day in (("НачальныйОстаток", OPENING_BOOKED, start),
                               ("КонечныйОстаток", CLOSING_BOOKED, end)):
            if not fields.get(key):
                continue
            try:
                amount = parse_amount(fields[key], CURRENCY, signed=True)
            except AmountError as exc:
                raise _BadField(key, str(exc)) from None
            balances.append(StatementBalance(
                format=FORMAT, account=account, statement_id=self.statement_id(account),
                line_number=section.line_number, type_code=code, amount=amount, currency=CURRENCY,
                date=day))
        return balances

    def document(self, section: _Section) -> list[StatementItem]:
        fields = section.fields
        for key in _REQUIRED:
            if not fields.get(key):
                raise _BadField(key, "missing")
        payer = fields.get("ПлательщикСчет") or fields.get("ПлательщикРасчСчет", "")
        payee = fields.get("ПолучательСчет") or fields.get("ПолучательРасчСчет", "")
        if not payer:
            raise _BadField("ПлательщикСчет", "missing")
        if not payee:
            raise _BadField("ПолучательСчет", "missing")
        try:
            amount = parse_amount(fields["Сумма"], CURRENCY)
        except AmountError as exc:
            raise _BadField("Сумма", str(exc)) from None
        sides = [(Direction.DEBIT, payer)] if payer in self.ours else []
        if payee in self.ours:
            sides.append((Direction.CREDIT, payee))
        if not sides:
            raise _BadField("ПлательщикСчет/ПолучательСчет",
                            f"neither payer {payer} nor receiver {payee} is our account")
        document_date = _date(fields, "Дата", required=True)
        remittance = fields.get("НазначениеПлатежа") or " ".join(
            fields[f"НазначениеПлатежа{n}"] for n in range(1, 7) if fields.get(f"НазначениеПлатежа{n}"))
        lines: list[StatementItem] = []
        for sub_index, (direction, account) in enumerate(sides, start=1 if len(sides) > 1 else 0):
            other = "Получатель" if direction is Direction.DEBIT else "Плательщик"
            booked = _date(fields, "ДатаСписано" if direction is Direction.DEBIT else "ДатаПоступило")
            lines.append(StatementLine(
                format=FORMAT, account=account, statement_id=self.statement_id(account),
                line_number=section.line_number, sub_index=sub_index, amount=amount,
                currency=CURRENCY, direction=direction, status=EntryStatus.BOOKED,
                booking_date=booked, value_date=booked,
                document_number=fields["Номер"], document_date=document_date,
                document_type=section.kind,
                counterparty_name=fields.get(f"{other}1") or fields.get(other, ""),
                counterparty_account=payee if direction is Direction.DEBIT else payer,
                counterparty_bank=fields.get(f"{other}БИК", ""),
                counterparty_tax_id=fields.get(f"{other}ИНН", ""),
                remittance=remittance))
        return lines
