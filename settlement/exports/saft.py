"""SAF-T style XML (OECD Standard Audit File for Tax, GeneralLedgerEntries).

``journal.xml`` is an ``AuditFile`` whose ``GeneralLedgerEntries`` carries
``NumberOfEntries``, ``TotalDebit`` and ``TotalCredit`` (sums of the line amounts in
the reporting currency) and one ``Transaction`` per sealed entry:
``TransactionID`` is the journal sequence number, ``SystemID`` the entry id,
``SourceID`` its idempotency key, ``TransactionType`` its kind,
``TransactionDate``/``GLPostingDate`` the effective date, ``SystemEntryDate`` the
recorded time. Each ``Line`` (``RecordID`` = posting id, ``AccountID`` = account
code) has a ``DebitAmount`` or ``CreditAmount`` with ``Amount`` (reporting
currency), ``CurrencyCode``, ``CurrencyAmount`` (the posting's own amount) and
``ExchangeRate``: Amount = CurrencyAmount x ExchangeRate, rounded half-even to the
reporting currency's places. Elements SAF-T has no place for (``EffectiveAt``,
``Metadata``, ``ReversesEntryID``, ``HoldID``, ``LeafHash``, ``LedgerAccountID``,
``Pending``) follow the standard ones, so the file rebuilds each entry's canonical
bytes exactly.

``trial_balance.xml`` lists ``MasterFiles/GeneralLedgerAccounts/Account`` with
opening and closing debit or credit balances and the period's movements;
``statements.xml`` one ``Statement`` per account. Their amounts are in the
account's own currency (``CurrencyCode``).

Text XML 1.0 cannot hold (control characters) is written as a JSON string with
``enc="json"``; carriage returns as ``&#13;``. Nothing is lost either way.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO

from settlement.exports.rows import BalanceLine, EntryFields, PostingFields, StatementLine, format_amount
from settlement.exports.writers import split_net

NAMESPACE = "urn:settlement:saf-t-style:1"
#: Characters XML 1.0 cannot carry, even escaped.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def element(name: str, value: str | int | None) -> str:
    """``<name>value</name>`` with the value escaped losslessly (see module doc)."""
    if value is None:
        return ""
    text = str(value)
    if _NOT_XML.search(text):
        return f'<{name} enc="json">{_escape(json.dumps(text))}</{name}>'
    return f"<{name}>{_escape(text)}</{name}>"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def header(created_at: str, reporting_currency: str | None, period_from: str | None, period_to: str | None) -> str:
    criteria = element("SelectionStartDate", period_from) + element("SelectionEndDate", period_to)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<AuditFile xmlns="{NAMESPACE}">\n<Header>'
            "<AuditFileVersion>2.00</AuditFileVersion>" + element("AuditFileDateCreated", created_at)
            + "<SoftwareID>settlement</SoftwareID>" + element("DefaultCurrencyCode", reporting_currency)
            + f"<SelectionCriteria>{criteria}</SelectionCriteria></Header>\n")


class SaftWriter:
    """Writes one of the three XML reports. The journal's totals come first in the
    file but are known only at the end, so its transactions go to a side file that
    is appended after the totals (memory stays flat)."""

    def __init__(self, path: Path, report: str, *, created_at: str, reporting_currency: str | None,
                 period_from: str | None, period_to: str | None) -> None:
        self.path = path
        self.report = report
        self.rows = 0
        self.entries = 0
        self.total_debit = 0
        self.total_credit = 0
        self.reporting_currency = reporting_currency
        self._header_fields = (created_at, period_from, period_to)
        self._body_path = path.with_name(path.name + ".body")
        self._body: IO[str] = self._body_path.open("w", encoding="utf-8", newline="\n")
        self._open_statement = False

    # -- journal ----------------------------------------------------------------------

    def journal(self, entry: EntryFields, postings: Sequence[PostingFields]) -> None:
        seq, entry_id, key, kind, effective, recorded, description, metadata, reverses, hold, leaf = entry
        date = effective[:10]
        parts = ["<Transaction>" + element("TransactionID", seq) + element("Period", int(date[5:7]))
                 + element("PeriodYear", date[:4]) + element("TransactionDate", date) + element("SourceID", key)
                 + element("TransactionType", kind) + element("Description", description)
                 + element("SystemEntryDate", recorded) + element("GLPostingDate", date)
                 + element("SystemID", entry_id) + element("EffectiveAt", effective) + element("Metadata", metadata)
                 + element("ReversesEntryID", reverses) + element("HoldID", hold) + element("LeafHash", leaf) + "\n"]
        self.entries += 1
        for posting_id, account_id, code, side, amount, currency, pending, reporting, rate in postings:
            assert reporting is not None
            assert rate is not None
            assert self.reporting_currency is not None
            if side == "D":
                self.total_debit += reporting
            else:
                self.total_credit += reporting
            tag = "DebitAmount" if side == "D" else "CreditAmount"
            parts.append("<Line>" + element("RecordID", posting_id) + element("AccountID", code)
                         + element("SystemEntryDate", recorded) + f"<{tag}>"
                         + element("Amount", format_amount(reporting, self.reporting_currency))
                         + element("CurrencyCode", currency)
                         + element("CurrencyAmount", format_amount(amount, currency))
                         + element("ExchangeRate", rate_text(rate)) + f"</{tag}>"
                         + element("LedgerAccountID", account_id)
                         + element("Pending", "true" if pending else "false") + "</Line>\n")
            self.rows += 1
        if not postings:
            self.rows += 1
        parts.append("</Transaction>\n")
        self._body.write("".join(parts))

    # -- trial balance ----------------------------------------------------------------

    def balance(self, line: BalanceLine) -> None:
        c = line.currency
        opening = split_net(line.opening, c)
        closing = split_net(line.closing, c)
        self._body.write(
            "<Account>" + element("AccountID", line.account_code) + element("AccountDescription", line.account_code)
            + element("LedgerAccountID", line.account_id) + element("AccountType", line.type)
            + element("CurrencyCode", c)
            + (element("OpeningDebitBalance", opening[0]) if line.opening >= 0
               else element("OpeningCreditBalance", opening[1]))
            + element("PeriodDebit", format_amount(line.debit, c))
            + element("PeriodCredit", format_amount(line.credit, c))
            + (element("ClosingDebitBalance", closing[0]) if line.closing >= 0
               else element("ClosingCreditBalance", closing[1]))
            + "</Account>\n")
        self.rows += 1

    # -- statements -------------------------------------------------------------------

    def statement(self, line: StatementLine) -> None:
        write = self._body.write
        c = line.currency
        balance = format_amount(line.balance, c)
        if line.line == "opening":
            write("<Statement>" + element("AccountID", line.account_code) + element("CurrencyCode", c)
                  + element("OpeningBalance", balance) + "\n")
            self._open_statement = True
        elif line.line == "closing":
            write(element("ClosingBalance", balance) + "</Statement>\n")
            self._open_statement = False
        else:
            assert line.amount is not None
            tag = "DebitAmount" if line.side == "D" else "CreditAmount"
            write("<Line>" + element("TransactionID", line.seq) + element("SystemID", line.entry_id)
                  + element("RecordID", line.posting_id) + element("SystemEntryDate", line.recorded_at)
                  + element("Description", line.description) + element(tag, format_amount(line.amount, c))
                  + element("Balance", balance) + "</Line>\n")
        self.rows += 1

    def close(self) -> None:
        self._body.close()
        with self.path.open("w", encoding="utf-8", newline="\n") as out:
            created_at, period_from, period_to = self._header_fields
            out.write(header(created_at, self.reporting_currency, period_from, period_to))
            if self.report == "journal":
                currency = self.reporting_currency
                out.write("<GeneralLedgerEntries>" + element("NumberOfEntries", self.entries)
                          + element("TotalDebit", format_amount(self.total_debit, currency) if currency else "0")
                          + element("TotalCredit", format_amount(self.total_credit, currency) if currency else "0")
                          + "\n<Journal><JournalID>GL</JournalID><Description>General ledger</Description>\n")
            elif self.report == "trial_balance":
                out.write("<MasterFiles><GeneralLedgerAccounts>\n")
            else:
                out.write("<AccountStatements>\n")
            with self._body_path.open("r", encoding="utf-8", newline="\n") as body:
                shutil.copyfileobj(body, out, 1 << 20)
            out.write({"journal": "</Journal></GeneralLedgerEntries>\n",
                       "trial_balance": "</GeneralLedgerAccounts></MasterFiles>\n"}.get(self.report,
                                                                                        "</AccountStatements>\n"))
            out.write("</AuditFile>\n")
        self._body_path.unlink()


def rate_text(rate: Decimal) -> str:
    """A rate as a plain decimal string (no exponent)."""
    text = format(rate, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
