"""A bank statement as the bank would send it: ISO 20022 camt.053.001.08, one ``Stmt``
per account (one account per currency), opening and closing booked balances, one
booked entry per movement with its end-to-end id."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement, tostring

from adapters.statements import format_amount

NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
#: The demo company's accounts at its bank, by currency.
ACCOUNTS = {"RUB": "40702810900000000001", "CNY": "40702156900000000002"}
#: What each account held when the day began.
OPENING = {"RUB": 50_000_000, "CNY": 4_000_000}


@dataclass(frozen=True)
class StatementLine:
    amount: int          # signed minor units: money in is positive
    currency: str
    day: dt.date
    reference: str       # end-to-end id and the bank's reference
    text: str


def camt053(lines: Sequence[StatementLine], *, created: dt.datetime) -> bytes:
    """The statement document of ``lines``, one statement per currency."""
    document = Element("Document", xmlns=NAMESPACE)
    root = SubElement(document, "BkToCstmrStmt")
    header = SubElement(root, "GrpHdr")
    SubElement(header, "MsgId").text = f"DEMO-{created:%Y%m%d%H%M%S}"
    SubElement(header, "CreDtTm").text = created.isoformat(timespec="seconds")
    for currency in sorted({line.currency for line in lines}):
        mine = sorted((line for line in lines if line.currency == currency), key=lambda line: line.day)
        statement = SubElement(root, "Stmt")
        SubElement(statement, "Id").text = f"DEMO-{currency}-{created:%Y%m%d}"
        SubElement(statement, "CreDtTm").text = created.isoformat(timespec="seconds")
        account = SubElement(statement, "Acct")
        SubElement(SubElement(SubElement(account, "Id"), "Othr"), "Id").text = ACCOUNTS[currency]
        SubElement(account, "Ccy").text = currency
        opening = OPENING[currency]
        closing = opening + sum(line.amount for line in mine)
        _balance(statement, "OPBD", opening, currency, mine[0].day)
        _balance(statement, "CLBD", closing, currency, mine[-1].day)
        for line in mine:
            _entry(statement, line)
    body: bytes = tostring(document, encoding="unicode").encode("utf-8")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


def _balance(statement: Element, code: str, amount: int, currency: str, day: dt.date) -> None:
    balance = SubElement(statement, "Bal")
    SubElement(SubElement(SubElement(balance, "Tp"), "CdOrPrtry"), "Cd").text = code
    SubElement(balance, "Amt", Ccy=currency).text = format_amount(abs(amount), currency)
    SubElement(balance, "CdtDbtInd").text = "CRDT" if amount >= 0 else "DBIT"
    SubElement(SubElement(balance, "Dt"), "Dt").text = day.isoformat()


def _entry(statement: Element, line: StatementLine) -> None:
    entry = SubElement(statement, "Ntry")
    SubElement(entry, "Amt", Ccy=line.currency).text = format_amount(abs(line.amount), line.currency)
    SubElement(entry, "CdtDbtInd").text = "CRDT" if line.amount >= 0 else "DBIT"
    SubElement(SubElement(entry, "Sts"), "Cd").text = "BOOK"
    SubElement(SubElement(entry, "BookgDt"), "Dt").text = line.day.isoformat()
    SubElement(SubElement(entry, "ValDt"), "Dt").text = line.day.isoformat()
    SubElement(entry, "AcctSvcrRef").text = line.reference
    details = SubElement(SubElement(entry, "NtryDtls"), "TxDtls")
    SubElement(SubElement(details, "Refs"), "EndToEndId").text = line.reference
    SubElement(entry, "AddtlNtryInf").text = line.text
