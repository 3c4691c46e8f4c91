"""camt.053 written by an independent generator, not by our own factories.

The statements are built at test time with pyiso20022 (MIT; dataclasses generated
from the ISO 20022 XSDs for camt.053.001.02 to .12) and serialised with xsdata's
``XmlSerializer``, so element order, namespaces, decimal rendering and the
XML declaration are whatever a schema-driven writer produces.
"""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from typing import Any

import pytest

from adapters.statements import (
    BalanceCheck,
    Direction,
    StatementBalance,
    StatementLine,
    StatementLineError,
    parse_statement,
)

pytest.importorskip("pyiso20022", reason="test dependency pyiso20022 (with xsdata) writes the statements")
serializers = pytest.importorskip("xsdata.formats.dataclass.serializers")
from xsdata.models.datatype import XmlDate, XmlDateTime  # noqa: E402 - after the importorskip guard

IBAN = "DE44500105175407324931"


def _render(document: Any, version: str) -> bytes:
    config = serializers.config.SerializerConfig(xml_declaration=True, encoding="UTF-8")
    text = serializers.XmlSerializer(config=config).render(
        document, ns_map={None: f"urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}"})
    return str(text).encode()


def _v08() -> bytes:
    from pyiso20022.camt import camt_053_001_08 as m

    def amount(value: str) -> Any:
        return m.ActiveOrHistoricCurrencyAndAmount(value=Decimal(value), ccy="EUR")

    def day(text: str) -> Any:
        return m.DateAndDateTime2Choice(dt=XmlDate.from_string(text))

    def balance(code: str, value: str) -> Any:
        return m.CashBalance8(tp=m.BalanceType13(cd_or_prtry=m.BalanceType10Choice(cd=code)),
                              amt=amount(value), cdt_dbt_ind=m.CreditDebitCode.CRDT, dt=day("2024-05-02"))

    def party(name: str) -> Any:
        return m.Party40Choice(pty=m.PartyIdentification135(nm=name))

    code = m.BankTransactionCodeStructure4(prtry=m.ProprietaryBankTransactionCodeStructure1(cd="NTRF"))
    credit = m.ReportEntry10(
        ntry_ref="1", amt=amount("1520.40"), cdt_dbt_ind=m.CreditDebitCode.CRDT,
        sts=m.EntryStatus1Choice(cd="BOOK"), bookg_dt=day("2024-05-02"), val_dt=day("2024-05-02"),
        acct_svcr_ref="BANK-REF-1", bk_tx_cd=code,
        ntry_dtls=[m.EntryDetails9(tx_dtls=[m.EntryTransaction10(
            refs=m.TransactionReferences6(end_to_end_id="SETTLE-2024-05-01", tx_id="T1"),
            amt=amount("1520.40"), cdt_dbt_ind=m.CreditDebitCode.CRDT,
            rltd_pties=m.TransactionParties6(dbtr=party("Alipay Merchant Services")),
            rmt_inf=m.RemittanceInformation16(ustrd=["Net settlement 2024-05-01"]))])])
    batch = m.ReportEntry10(
        ntry_ref="2", amt=amount("300.00"), cdt_dbt_ind=m.CreditDebitCode.DBIT,
        sts=m.EntryStatus1Choice(cd="BOOK"), bookg_dt=day("2024-05-02"), bk_tx_cd=code,
        ntry_dtls=[m.EntryDetails9(
            btch=m.BatchInformation2(nb_of_txs="2"),
            tx_dtls=[m.EntryTransaction10(
                refs=m.TransactionReferences6(end_to_end_id=f"REFUND-{n}"), amt=amount(value),
                cdt_dbt_ind=m.CreditDebitCode.DBIT,
                rltd_pties=m.TransactionParties6(cdtr=party(f"Buyer {n}")))
                for n, value in ((1, "100.00"), (2, "200.00"))])])
    statement = m.AccountStatement9(
        id="STMT-0502", cre_dt_tm=XmlDateTime.from_string("2024-05-02T07:00:00+02:00"),
        acct=m.CashAccount39(id=m.AccountIdentification4Choice(iban=IBAN), ccy="EUR"),
        bal=[balance("OPBD", "5000.00"), balance("CLBD", "6220.40")], ntry=[credit, batch])
    document = m.Document(bk_to_cstmr_stmt=m.BankToCustomerStatementV08(
        grp_hdr=m.GroupHeader81(msg_id="GEN-08", cre_dt_tm=XmlDateTime.from_string("2024-05-02T07:00:00+02:00")),
        stmt=[statement]))
    return _render(document, "08")


def _v02() -> bytes:
    from pyiso20022.camt import camt_053_001_02 as m

    def amount(value: str, currency: str = "EUR") -> Any:
        return m.ActiveOrHistoricCurrencyAndAmount(value=Decimal(value), ccy=currency)

    def balance(code: str, value: str) -> Any:
        return m.CashBalance3(tp=m.BalanceType12(cd_or_prtry=m.BalanceType5Choice(cd=m.BalanceType12Code(code))),
                              amt=amount(value), cdt_dbt_ind=m.CreditDebitCode.CRDT,
                              dt=m.DateAndDateTimeChoice(dt=XmlDate.from_string("2024-05-02")))

    code = m.BankTransactionCodeStructure4(domn=m.BankTransactionCodeStructure5(
        cd="PMNT", fmly=m.BankTransactionCodeStructure6(cd="RCDT", sub_fmly_cd="XBCT")))
    entry = m.ReportEntry2(
        amt=amount("710.00"), cdt_dbt_ind=m.CreditDebitCode.CRDT, sts=m.EntryStatus2Code.BOOK,
        bookg_dt=m.DateAndDateTimeChoice(dt_tm=XmlDateTime.from_string("2024-05-02T10:15:00+03:00")),
        bk_tx_cd=code,
        ntry_dtls=[m.EntryDetails1(tx_dtls=[m.EntryTransaction2(
            refs=m.TransactionReferences2(end_to_end_id="CN-PAYOUT-77"),
            amt_dtls=m.AmountAndCurrencyExchange3(
                instd_amt=m.AmountAndCurrencyExchangeDetails3(amt=amount("5500.00", "CNY")),
                tx_amt=m.AmountAndCurrencyExchangeDetails3(amt=amount("710.00"))),
            rltd_pties=m.TransactionParty2(dbtr=m.PartyIdentification32(nm="UnionPay International")),
            rltd_agts=m.TransactionAgents2(dbtr_agt=m.BranchAndFinancialInstitutionIdentification4(
                fin_instn_id=m.FinancialInstitutionIdentification7(bic="BKCHCNBJ"))))])])
    statement = m.AccountStatement2(
        id="STMT-02", cre_dt_tm=XmlDateTime.from_string("2024-05-02T07:00:00+02:00"),
        acct=m.CashAccount20(id=m.AccountIdentification4Choice(iban=IBAN)),
        bal=[balance("OPBD", "0"), balance("CLBD", "710")], ntry=[entry])
    document = m.Document(bk_to_cstmr_stmt=m.BankToCustomerStatementV02(
        grp_hdr=m.GroupHeader42(msg_id="GEN-02", cre_dt_tm=XmlDateTime.from_string("2024-05-02T07:00:00+02:00")),
        stmt=[statement]))
    return _render(document, "02")


def test_generated_v08_statement() -> None:
    check = BalanceCheck()
    items = list(check.watch(parse_statement(io.BytesIO(_v08()))))
    assert not [item for item in items if isinstance(item, StatementLineError)]
    balances = [(b.type_code, b.amount) for b in items if isinstance(b, StatementBalance)]
    assert balances == [("OPBD", 500000), ("CLBD", 622040)]
    lines = [item for item in items if isinstance(item, StatementLine)]
    assert [(ln.line_number, ln.sub_index, ln.signed_amount, ln.end_to_end_id, ln.counterparty_name)
            for ln in lines] == [
        (1, 0, 152040, "SETTLE-2024-05-01", "Alipay Merchant Services"),
        (2, 1, -10000, "REFUND-1", "Buyer 1"),
        (2, 2, -20000, "REFUND-2", "Buyer 2"),
    ]
    assert lines[0].remittance == "Net settlement 2024-05-01"
    assert lines[0].document_type == "NTRF"
    [result] = check.results()
    assert result.ok


def test_generated_v02_statement_with_a_currency_conversion() -> None:
    check = BalanceCheck()
    items = list(check.watch(parse_statement(io.BytesIO(_v02()))))
    [line] = [item for item in items if isinstance(item, StatementLine)]
    assert (line.direction, line.amount, line.currency) == (Direction.CREDIT, 71000, "EUR")
    assert (line.instructed_amount, line.instructed_currency) == (550000, "CNY")
    assert line.booking_date == dt.date(2024, 5, 2)
    assert (line.counterparty_name, line.counterparty_bank) == ("UnionPay International", "BKCHCNBJ")
    assert line.document_type == "PMNT/RCDT/XBCT"
    [result] = check.results()
    assert result.ok
