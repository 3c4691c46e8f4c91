"""Reading the SAF-T style XML files back for the verifier, streaming (elements are
cleared once read), through defusedxml so a hostile file cannot expand entities.

Rows are named by element position: ``journal.xml Transaction 12 Line 2``,
``trial_balance.xml Account 3``, ``statements.xml Statement 4 Line 7``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from settlement.errors import SettlementError
from settlement.exports.readers import BadRow, Row, balance_line, journal_line, statement_line
from settlement.exports.rows import parse_amount


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _value(element: Element) -> str:
    text = element.text or ""
    if element.get("enc") == "json":
        decoded = json.loads(text)
        if not isinstance(decoded, str):
            raise BadRow(f"{_local(element.tag)} is not a JSON string")
        return decoded
    return text


def _fields(element: Element) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for child in element:
        name = _local(child.tag)
        if len(child):
            out[name] = child
        else:
            out[name] = _value(child)
    return out


class SaftJournal:
    """Iterate the journal's lines; afterwards ``number_of_entries``, ``total_debit``,
    ``total_credit`` (texts as written) and ``default_currency`` hold the header's
    values and ``transactions`` how many Transaction elements were read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.number_of_entries: str | None = None
        self.total_debit: str | None = None
        self.total_credit: str | None = None
        self.default_currency: str | None = None
        self.transactions = 0

    def __iter__(self) -> Iterator[Row]:
        name = self.path.name
        try:
            for event, element in iterparse(str(self.path), events=("end",), forbid_dtd=True):
                del event
                tag = _local(element.tag)
                if tag == "Transaction":
                    self.transactions += 1
                    yield from self._transaction(f"{name} Transaction {self.transactions}", element)
                    element.clear()
                elif tag == "NumberOfEntries":
                    self.number_of_entries = element.text
                elif tag == "TotalDebit":
                    self.total_debit = element.text
                elif tag == "TotalCredit":
                    self.total_credit = element.text
                elif tag == "DefaultCurrencyCode":
                    self.default_currency = element.text
        except (ParseError, DefusedXmlException) as exc:
            yield f"{name} (after Transaction {self.transactions})", f"is not well-formed XML ({exc})"

    def _transaction(self, where: str, element: Element) -> Iterator[Row]:
        try:
            entry = _fields(element)
            base = {"seq": entry.get("TransactionID"), "entry_id": entry.get("SystemID"),
                    "idempotency_key": entry.get("SourceID"), "kind": entry.get("TransactionType"),
                    "effective_at": entry.get("EffectiveAt"), "recorded_at": entry.get("SystemEntryDate"),
                    "description": entry.get("Description", ""), "reverses_entry_id": entry.get("ReversesEntryID"),
                    "hold_id": entry.get("HoldID"), "leaf_hash": entry.get("LeafHash")}
            metadata = entry.get("Metadata")
            lines = [child for child in element if _local(child.tag) == "Line"]
        except (BadRow, ValueError) as exc:
            yield where, str(exc)
            return
        if not lines:
            yield where, _line(base, metadata, None, self.default_currency)
        for number, line in enumerate(lines, 1):
            yield f"{where} Line {number}", _line(base, metadata, line, self.default_currency)


def _line(base: dict[str, Any], metadata: Any, line: Element | None, reporting_currency: str | None) -> Any:
    doc = dict(base, metadata=metadata, posting_id=None, account_id=None, account_code=None, debit=None,
               credit=None, currency=None, pending=None)
    try:
        rate = reporting = None
        if line is not None:
            fields = _fields(line)
            amount = fields.get("DebitAmount") if "DebitAmount" in fields else fields.get("CreditAmount")
            if not isinstance(amount, Element):
                raise BadRow("a Line needs a DebitAmount or a CreditAmount")
            money = _fields(amount)
            currency = money.get("CurrencyCode")
            doc.update(posting_id=fields.get("RecordID"), account_id=fields.get("LedgerAccountID"),
                       account_code=fields.get("AccountID"), currency=currency, pending=fields.get("Pending"))
            doc["debit" if "DebitAmount" in fields else "credit"] = money.get("CurrencyAmount")
            rate = Decimal(money.get("ExchangeRate", ""))
            reporting = money.get("Amount")
        parsed = journal_line(doc, metadata if isinstance(metadata, str) else "")
        if metadata is None:
            raise BadRow("Transaction has no Metadata")
        parsed.exchange_rate = rate
        if line is not None:
            if reporting_currency is None or not isinstance(reporting, str):
                raise BadRow("a Line amount needs the header's DefaultCurrencyCode and an Amount")
            parsed.reporting_amount = parse_amount(reporting, reporting_currency, field="Amount")
        return parsed
    except InvalidOperation:
        return "ExchangeRate is not a decimal"
    except (BadRow, SettlementError, TypeError) as exc:
        return str(exc)


def read_trial_balance(path: Path) -> Iterator[Row]:
    yield from _records(path, "Account", _account)


def read_statements(path: Path) -> Iterator[Row]:
    name = path.name
    count = 0
    try:
        for _, element in iterparse(str(path), events=("end",), forbid_dtd=True):
            if _local(element.tag) != "Statement":
                continue
            count += 1
            where = f"{name} Statement {count}"
            try:
                fields = _fields(element)
                code, currency = fields.get("AccountID"), fields.get("CurrencyCode")
                common = {"account_code": code, "currency": currency, "seq": None, "entry_id": None,
                          "posting_id": None, "recorded_at": None, "description": None, "debit": None,
                          "credit": None}
                yield where, _statement(dict(common, line="opening", balance=fields.get("OpeningBalance")))
                number = 0
                for child in element:
                    if _local(child.tag) != "Line":
                        continue
                    number += 1
                    line = _fields(child)
                    yield f"{where} Line {number}", _statement(dict(
                        common, line="posting", balance=line.get("Balance"), seq=line.get("TransactionID"),
                        entry_id=line.get("SystemID"), posting_id=line.get("RecordID"),
                        recorded_at=line.get("SystemEntryDate"), description=line.get("Description", ""),
                        debit=line.get("DebitAmount"), credit=line.get("CreditAmount")))
                yield f"{where} ClosingBalance", _statement(dict(common, line="closing",
                                                                 balance=fields.get("ClosingBalance")))
            except BadRow as exc:
                yield where, str(exc)
            element.clear()
    except (ParseError, DefusedXmlException) as exc:
        yield f"{name} (after Statement {count})", f"is not well-formed XML ({exc})"


def _statement(doc: dict[str, Any]) -> Any:
    try:
        return statement_line(doc)
    except (BadRow, SettlementError, TypeError) as exc:
        return str(exc)


def _account(element: Element) -> Any:
    fields = _fields(element)
    currency = fields.get("CurrencyCode")
    zero = "0"
    try:
        if not isinstance(currency, str):
            raise BadRow("Account has no CurrencyCode")
        doc = {"account_id": fields.get("LedgerAccountID"), "account_code": fields.get("AccountID"),
               "currency": currency, "type": fields.get("AccountType"),
               "opening_debit": fields.get("OpeningDebitBalance", zero),
               "opening_credit": fields.get("OpeningCreditBalance", zero),
               "debit": fields.get("PeriodDebit"), "credit": fields.get("PeriodCredit"),
               "closing_debit": fields.get("ClosingDebitBalance", zero),
               "closing_credit": fields.get("ClosingCreditBalance", zero)}
        return balance_line(doc)
    except (BadRow, SettlementError, TypeError) as exc:
        return str(exc)


def _records(path: Path, tag: str, parse: Any) -> Iterator[Row]:
    name = path.name
    count = 0
    try:
        for _, element in iterparse(str(path), events=("end",), forbid_dtd=True):
            if _local(element.tag) != tag:
                continue
            count += 1
            yield f"{name} {tag} {count}", parse(element)
            element.clear()
    except (ParseError, DefusedXmlException) as exc:
        yield f"{name} (after {tag} {count})", f"is not well-formed XML ({exc})"
