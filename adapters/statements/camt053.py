"""ISO 20022 camt.053 (BankToCustomerStatement) reader, every schema version.

Elements are matched on local names, so any namespace
``urn:iso:std:iso:20022:tech:xsd:camt.053.001.NN`` is read the same way; the
differences between versions that matter here are absorbed:

* entry status is ``<Sts>BOOK</Sts>`` up to .06 and ``<Sts><Cd>BOOK</Cd></Sts>``
  from .07 on;
* a transaction's amount is ``TxDtls/AmtDtls/TxAmt/Amt`` in .02 and
  ``TxDtls/Amt`` from .03 on;
* parties are ``Dbtr/Nm`` up to .07 and ``Dbtr/Pty/Nm`` from .08 on;
* a bank's BIC is ``FinInstnId/BIC`` in .02 and ``FinInstnId/BICFI`` later.

Rules:

* Each ``Ntry`` gives one :class:`StatementLine`; a batch entry with several
  ``TxDtls`` gives one line per transaction (``sub_index`` 1, 2...), whose signed
  amounts must add up to the entry's or the entry becomes one error item. A single
  ``TxDtls`` enriches the entry's line, whose amount stays the booked one.
* ``Bal`` elements give :class:`StatementBalance` items (signed by ``CdtDbtInd``).
* The XML is read by defusedxml's ``iterparse`` with DTDs, entity declarations and
  external references forbidden (:class:`UnsafeStatement`), and every finished
  entry, balance or statement is detached from the tree, so memory is bounded by
  the largest single entry whatever the number of entries. Nesting deeper than
  :data:`MAX_DEPTH` makes the file unusable.
* The document element must be ``Document`` in a camt.053 namespace with
  ``BkToCstmrStmt`` under it; this is checked before the reader is returned, so a
  file that is not camt.053 fails at once. The error names the line of the element
  at fault and the element expected there: an empty file fails on line 1, field
  ``Document``; XML that is not well-formed names the line where it breaks.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, BinaryIO
from xml.etree.ElementTree import Element, ParseError, TreeBuilder
from xml.parsers.expat import errors as expat_errors

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser
from defusedxml.ElementTree import iterparse as safe_iterparse

from adapters.statements.base import (
    AmountError,
    Direction,
    EntryStatus,
    StatementBalance,
    StatementFormat,
    StatementItem,
    StatementLine,
    StatementLineError,
    UnsafeStatement,
    UnusableStatement,
    parse_amount,
)

FORMAT = StatementFormat.CAMT053
#: Real statements nest about 15 deep; more is an attempt to grow the parse stack.
MAX_DEPTH = 64
NAMESPACE = re.compile(r"urn:iso:std:iso:20022:tech:xsd:camt\.053\.001\.(\d{2})")
_STATUS = {status.value: status for status in EntryStatus}
_NO_ELEMENTS = expat_errors.codes[expat_errors.XML_ERROR_NO_ELEMENTS]


class _BadField(Exception):
    """Internal: a field of one entry or balance is unusable."""

    def __init__(self, field: str, reason: str, raw: str = "") -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason
        self.raw = raw


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _find(element: Element | None, path: str) -> Element | None:
    """First descendant along ``path`` (``"A/B/C"``). Tags are local names by now:
    the reader strips namespaces as elements open."""
    for name in path.split("/"):
        if element is None:
            return None
        element = element.find(name)
    return element


def _find_all(element: Element, name: str) -> list[Element]:
    return element.findall(name)


def _text(element: Element | None, path: str = "") -> str:
    found = _find(element, path) if path else element
    return (found.text or "").strip() if found is not None else ""


def _first_text(element: Element | None, *paths: str) -> str:
    for path in paths:
        if value := _text(element, path):
            return value
    return ""


def _amount(element: Element | None, field: str) -> tuple[int, str]:
    """(minor units, currency) of an ``...Amt Ccy="RUB"`` element (any currency)."""
    if element is None:
        raise _BadField(field, "missing")
    currency = element.get("Ccy", "").strip()
    text = (element.text or "").strip()
    try:
        return parse_amount(text, currency), currency
    except AmountError as exc:
        raise _BadField(field, str(exc), f"{text} {currency}"[:200]) from None


def _direction(text: str, field: str) -> Direction:
    if text == "CRDT":
        return Direction.CREDIT
    if text == "DBIT":
        return Direction.DEBIT
    raise _BadField(field, f"{text!r} is neither CRDT nor DBIT")


def _date(element: Element | None, field: str) -> dt.date | None:
    """``<X><Dt>`` or ``<X><DtTm>``; a date-time keeps the bank's own calendar day."""
    if element is None:
        return None
    try:
        if day := _text(element, "Dt"):
            return dt.date.fromisoformat(day)
        if moment := _text(element, "DtTm"):
            return dt.datetime.fromisoformat(moment).date()
    except ValueError:
        raise _BadField(field, "not an ISO 8601 date") from None
    raise _BadField(field, "neither Dt nor DtTm")


def _account_id(account: Element | None) -> str:
    return _first_text(account, "Id/IBAN", "Id/Othr/Id")


def _party_name(party: Element | None) -> str:
    return _first_text(party, "Nm", "Pty/Nm")


def _bank_code(transaction_code: Element | None) -> str:
    domain = _find(transaction_code, "Domn")
    if domain is not None:
        parts = [_text(domain, "Cd"), _text(domain, "Fmly/Cd"), _text(domain, "Fmly/SubFmlyCd")]
        return "/".join(part for part in parts if part)
    return _text(transaction_code, "Prtry/Cd")


class _Statement:
    """What the reader knows about the ``Stmt`` it is inside."""

    def __init__(self, ordinal: int) -> None:
        self.ordinal = ordinal
        self.statement_id = ""
        self.account = ""
        self.balances = 0
        self.checked = False

    @property
    def label(self) -> str:
        return self.statement_id or f"Stmt#{self.ordinal}"


class _OpeningLines(TreeBuilder):
    """A tree builder that notes the line on which each element starts, for the
    errors about the document's opening, until :meth:`stop` is called; from then on it
    is the plain (C) builder, at no cost per element."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[int] = []
        self.expat: Any = None
        # An instance attribute shadows TreeBuilder.start; stop() removes it.
        self.__dict__["start"] = self._noting

    def _noting(self, tag: str, attrs: dict[str, str]) -> Element:
        self.lines.append(self.expat.CurrentLineNumber if self.expat is not None else 0)
        return TreeBuilder.start(self, tag, attrs)

    def line(self, index: int) -> int:
        """The line of the ``index``-th element (0-based, in document order)."""
        return self.lines[index] if index < len(self.lines) else 0

    def stop(self) -> None:
        self.__dict__.pop("start", None)


def parse_camt053(stream: BinaryIO) -> Iterator[StatementItem]:
    """Stream the items of a camt.053 statement file (see the module docstring).

    Raises :class:`UnusableStatement` at once when the file is not a camt.053
    document, :class:`UnsafeStatement` for DTDs and entities, and
    :class:`UnusableStatement` mid-stream when the XML breaks off.
    """
    builder = _OpeningLines()
    parser = DefusedXMLParser(target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    builder.expat = parser.parser
    events = safe_iterparse(stream, events=("start", "end"), parser=parser)
    stack: list[Element] = []
    try:
        with _xml_errors(produced=False):
            for event, element in events:
                if event != "start":
                    raise UnusableStatement("the camt.053 Document is empty: no BkToCstmrStmt",
                                            line_number=builder.line(0), field_name="BkToCstmrStmt")
                stack.append(element)
                if len(stack) == 1:
                    match = NAMESPACE.fullmatch(element.tag[1:].partition("}")[0])
                    if _local(element.tag) != "Document" or match is None:
                        raise UnusableStatement(f"root element is {element.tag!r}, not a camt.053 Document",
                                                line_number=builder.line(0), field_name="Document")
                elif _local(element.tag) != "BkToCstmrStmt":
                    raise UnusableStatement(f"Document holds {_local(element.tag)!r}, not BkToCstmrStmt",
                                            line_number=builder.line(1), field_name="BkToCstmrStmt")
                else:
                    break
            else:
                raise UnusableStatement("the camt.053 file is empty: no Document", line_number=1,
                                        field_name="Document")
    finally:
        builder.stop()
    return _read(events, stack, lambda: int(parser.parser.CurrentLineNumber))


@contextmanager
def _xml_errors(*, produced: bool) -> Iterator[None]:
    """Turn parser failures into :class:`UnusableStatement` / :class:`UnsafeStatement`."""
    try:
        yield
    except DefusedXmlException as exc:
        raise UnsafeStatement(f"refused: {exc}", field_name="DOCTYPE") from exc
    except ParseError as exc:
        line, column = exc.position
        if exc.code == _NO_ELEMENTS and not produced:
            raise UnusableStatement(f"the camt.053 file is empty: no Document element (line {line})",
                                    line_number=line, field_name="Document") from exc
        where = "mid-stream" if produced else "at the start"
        raise UnusableStatement(f"XML is not well-formed {where}: line {line}, column {column}",
                                line_number=line, field_name="xml") from exc


def _read(events: Iterator[tuple[str, Element]], stack: list[Element],
          read_up_to: Callable[[], int]) -> Iterator[StatementItem]:
    """The items after the opening; ``read_up_to`` is the line the XML parser has read
    to, the line an unusable file is reported at when the fault has no position of its
    own."""
    entries = 0
    statements = 0
    statement: _Statement | None = None
    with _xml_errors(produced=True):
        for event, element in events:
            if event == "start":
                # local names from here on: versions and prefixes differ only in namespace
                element.tag = _local(element.tag)
                stack.append(element)
                if len(stack) > MAX_DEPTH:
                    raise UnusableStatement(f"elements nested deeper than {MAX_DEPTH} (read up to line "
                                            f"{read_up_to()})", line_number=read_up_to(), field_name=element.tag)
                if len(stack) == 3 and element.tag == "Stmt":
                    statements += 1
                    statement = _Statement(statements)
                continue
            stack.pop()
            if len(stack) <= 2:
                # a finished child of BkToCstmrStmt (GrpHdr, Stmt): detach it
                if stack:
                    stack[-1].remove(element)
                if len(stack) == 2 and element.tag not in ("GrpHdr", "Stmt", "SplmtryData"):
                    yield StatementLineError(format=FORMAT, line_number=0, field=element.tag,
                                             reason="not allowed under BkToCstmrStmt: ignored")
                statement = None
                continue
            if len(stack) != 3 or statement is None:
                continue
            name = element.tag
            if name == "Id":
                statement.statement_id = (element.text or "").strip()
            elif name == "Acct":
                statement.account = _account_id(element)
            elif name == "Bal":
                statement.balances += 1
                yield from _check_statement(statement)
                yield _balance(element, statement)
            elif name == "Ntry":
                entries += 1
                yield from _check_statement(statement)
                yield from _entry(element, statement, entries)
            # Stmt keeps no finished child: what is needed was copied above
            stack[-1].remove(element)


def _check_statement(statement: _Statement) -> Iterator[StatementLineError]:
    if statement.checked:
        return
    statement.checked = True
    if not statement.statement_id:
        yield StatementLineError(format=FORMAT, line_number=0, field="Stmt/Id", reason="missing",
                                 statement_id=statement.label)
    if not statement.account:
        yield StatementLineError(format=FORMAT, line_number=0, field="Stmt/Acct/Id",
                                 reason="missing: entries of this statement cannot be attributed",
                                 statement_id=statement.label)


def _balance(element: Element, statement: _Statement) -> StatementBalance | StatementLineError:
    try:
        type_code = _first_text(element, "Tp/CdOrPrtry/Cd", "Tp/CdOrPrtry/Prtry")
        if not type_code:
            raise _BadField("Bal/Tp", "missing balance type")
        amount, currency = _amount(_find(element, "Amt"), "Bal/Amt")
        direction = _direction(_text(element, "CdtDbtInd"), "Bal/CdtDbtInd")
        day = _date(_find(element, "Dt"), "Bal/Dt")
    except _BadField as bad:
        return StatementLineError(format=FORMAT, line_number=0, field=bad.field, reason=bad.reason,
                                  statement_id=statement.label, raw=bad.raw)
    return StatementBalance(format=FORMAT, account=statement.account, statement_id=statement.label,
                            line_number=statement.balances, type_code=type_code,
                            amount=amount if direction is Direction.CREDIT else -amount,
                            currency=currency, date=day)


def _entry(ntry: Element, statement: _Statement, index: int) -> Iterator[StatementItem]:
    """The items of one ``Ntry``: its line(s), or error items naming the field."""
    def error(field: str, reason: str, sub_index: int = 0, raw: str = "") -> StatementLineError:
        return StatementLineError(format=FORMAT, line_number=index, field=field, reason=reason,
                                  statement_id=statement.label, sub_index=sub_index, raw=raw)

    if not statement.account:
        yield error("Stmt/Acct/Id", "statement account missing")
        return
    try:
        amount, currency = _amount(_find(ntry, "Amt"), "Ntry/Amt")
        status_text = _first_text(ntry, "Sts", "Sts/Cd", "Sts/Prtry")
        status = _STATUS.get(status_text)
        if status is None:
            raise _BadField("Ntry/Sts", f"unknown entry status {status_text!r}")
        entry = StatementLine(
            format=FORMAT, account=statement.account, statement_id=statement.label,
            line_number=index, sub_index=0, amount=amount, currency=currency,
            direction=_direction(_text(ntry, "CdtDbtInd"), "Ntry/CdtDbtInd"), status=status,
            booking_date=_date(_find(ntry, "BookgDt"), "Ntry/BookgDt"),
            value_date=_date(_find(ntry, "ValDt"), "Ntry/ValDt"),
            bank_reference=_text(ntry, "AcctSvcrRef"), entry_reference=_text(ntry, "NtryRef"),
            document_type=_bank_code(_find(ntry, "BkTxCd")), remittance=_text(ntry, "AddtlNtryInf"),
            reversal=_text(ntry, "RvslInd").lower() in ("true", "1"))
    except _BadField as bad:
        yield error(bad.field, bad.reason, raw=bad.raw)
        return
    details = [tx for block in _find_all(ntry, "NtryDtls") for tx in _find_all(block, "TxDtls")]
    if len(details) <= 1:
        try:
            yield _with_details(entry, details[0]) if details else entry
        except _BadField as bad:
            yield error(bad.field, bad.reason, raw=bad.raw)
        return
    lines: list[StatementLine] = []
    failed = False
    for sub_index, tx in enumerate(details, start=1):
        try:
            indicator = _text(tx, "CdtDbtInd")
            direction = _direction(indicator, "TxDtls/CdtDbtInd") if indicator else entry.direction
            part = replace(entry, sub_index=sub_index, direction=direction,
                           amount=_batch_amount(tx, currency))
            lines.append(_with_details(part, tx))
        except _BadField as bad:
            failed = True
            yield error(bad.field, bad.reason, sub_index, bad.raw)
    total = sum(line.signed_amount for line in lines)
    if not failed and total != entry.signed_amount:
        yield error("Ntry/NtryDtls/TxDtls/Amt",
                    f"batch transactions add up to {total}, the entry books {entry.signed_amount}")
        return
    yield from lines


def _batch_amount(tx: Element, currency: str) -> int:
    """A batch transaction's amount in the entry currency (``Amt``, or .02's ``TxAmt``)."""
    for path, field in (("Amt", "TxDtls/Amt"), ("AmtDtls/TxAmt/Amt", "TxDtls/AmtDtls/TxAmt/Amt")):
        element = _find(tx, path)
        if element is not None and element.get("Ccy", "").strip() == currency:
            return _amount(element, field)[0]
    raise _BadField("TxDtls/Amt", f"no transaction amount in the entry currency {currency}")


def _remittance(tx: Element) -> str:
    """``Ustrd`` lines joined by a space, else structured creditor references."""
    info = _find(tx, "RmtInf")
    if info is None:
        return ""
    unstructured = " ".join(_text(line) for line in _find_all(info, "Ustrd"))
    if unstructured:
        return unstructured
    references = (_text(block, "CdtrRefInf/Ref") for block in _find_all(info, "Strd"))
    return " ".join(ref for ref in references if ref)


def _with_details(line: StatementLine, tx: Element) -> StatementLine:
    """``line`` with what a ``TxDtls`` adds: references, counterparty, remittance.
    The counterparty is the debtor of a credit and the creditor of a debit."""
    refs = _find(tx, "Refs")
    side, agent = ("Dbtr", "DbtrAgt") if line.direction is Direction.CREDIT else ("Cdtr", "CdtrAgt")
    parties = _find(tx, "RltdPties")
    instructed_amount: int | None = None
    instructed_currency: str | None = None
    instructed = _find(tx, "AmtDtls/InstdAmt/Amt")
    if instructed is not None:
        instructed_amount, instructed_currency = _amount(instructed, "TxDtls/AmtDtls/InstdAmt/Amt")
    return replace(
        line,
        bank_reference=_text(refs, "AcctSvcrRef") or line.bank_reference,
        end_to_end_id=_text(refs, "EndToEndId"),
        instruction_id=_text(refs, "InstrId"),
        transaction_id=_text(refs, "TxId"),
        payment_information_id=_text(refs, "PmtInfId"),
        message_id=_text(refs, "MsgId"),
        uetr=_text(refs, "UETR"),
        counterparty_name=_party_name(_find(parties, side)),
        counterparty_account=_account_id(_find(parties, f"{side}Acct")),
        counterparty_bank=_first_text(_find(tx, f"RltdAgts/{agent}"), "FinInstnId/BICFI",
                                      "FinInstnId/BIC"),
        remittance=_remittance(tx) or _text(tx, "AddtlTxInf") or line.remittance,
        purpose=_first_text(tx, "Purp/Cd", "Purp/Prtry"),
        instructed_amount=instructed_amount,
        instructed_currency=instructed_currency,
    )
