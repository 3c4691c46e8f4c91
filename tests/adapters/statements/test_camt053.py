"""camt.053 statements across schema versions: entries, batches, balances, errors."""

from __future__ import annotations

import datetime as dt
import io

import pytest

from adapters.statements import (
    BalanceCheck,
    Direction,
    EntryStatus,
    StatementBalance,
    StatementFormat,
    StatementItem,
    StatementLine,
    StatementLineError,
    UnusableStatement,
    parse_camt053,
    parse_statement,
)
from tests.adapters.statements.factories import (
    DOCUMENT_CLOSE,
    OUR_IBAN,
    Entry,
    Tx,
    balance_xml,
    camt053,
    document_open,
    entry_xml,
    statement_open,
)

VERSIONS = [2, 4, 8, 13]


def _parse(data: bytes) -> list[StatementItem]:
    return list(parse_statement(io.BytesIO(data)))


def _lines(items: list[StatementItem]) -> list[StatementLine]:
    return [item for item in items if isinstance(item, StatementLine)]


def _errors(items: list[StatementItem]) -> list[StatementLineError]:
    return [item for item in items if isinstance(item, StatementLineError)]


def _day_statement(version: int) -> bytes:
    """Opening 1 000.00; +250.75 (one payment), -99.99 (fee), +300.00 (batch of two
    marketplace payouts 120.00 + 180.00), a pending 5.00 credit; closing 1 450.76."""
    return camt053(version, [
        Entry("250.75", "CRDT", reference="N1", bank_reference="ASR-1", txs=[Tx(
            end_to_end_id="E2E-ORDER-1", instruction_id="INSTR-1", transaction_id="TX-1",
            name="Ivan Petrov", account="DE02120300000000202051", bic="BYLADEM1001",
            remittance=("Order 1 ", "part 2"), purpose="GDDS", instructed=("2000.00", "CNY"))]),
        Entry("99.99", "DBIT", bank_reference="ASR-2", txs=[Tx(
            end_to_end_id="FEE-03", name="Acquirer GmbH", account="DE75512108001245126199",
            remittance=("Monthly fee",))]),
        Entry("300.00", "CRDT", bank_reference="ASR-3", txs=[
            Tx(amount="120.00", end_to_end_id="PAYOUT-A", name="Alipay", remittance=("Settlement A",)),
            Tx(amount="180.00", end_to_end_id="PAYOUT-B", name="UnionPay", remittance=("Settlement B",))]),
        Entry("5.00", "CRDT", status="PDNG", booking=None, info="pending card credit"),
    ], balances=[balance_xml("OPBD", "1000.00"), balance_xml("CLBD", "1450.76"),
                 balance_xml("CLAV", "1455.76")])


@pytest.mark.parametrize("version", VERSIONS)
def test_entries_batches_and_balances(version: int) -> None:
    items = _parse(_day_statement(version))
    assert not _errors(items)
    balances = [item for item in items if isinstance(item, StatementBalance)]
    assert [(b.type_code, b.amount, b.currency) for b in balances] == [
        ("OPBD", 100000, "EUR"), ("CLBD", 145076, "EUR"), ("CLAV", 145576, "EUR")]
    assert all(b.account == OUR_IBAN and b.statement_id == "STMT-2024-03-01" for b in balances)
    lines = _lines(items)
    assert [(ln.line_number, ln.sub_index, ln.direction, ln.amount) for ln in lines] == [
        (1, 0, Direction.CREDIT, 25075),
        (2, 0, Direction.DEBIT, 9999),
        (3, 1, Direction.CREDIT, 12000),
        (3, 2, Direction.CREDIT, 18000),
        (4, 0, Direction.CREDIT, 500),
    ]
    payment = lines[0]
    assert payment.format is StatementFormat.CAMT053
    assert (payment.account, payment.currency, payment.status) == (OUR_IBAN, "EUR", EntryStatus.BOOKED)
    assert payment.booking_date == payment.value_date == dt.date(2024, 3, 1)
    assert (payment.entry_reference, payment.bank_reference) == ("N1", "ASR-1")
    assert (payment.end_to_end_id, payment.instruction_id, payment.transaction_id) == (
        "E2E-ORDER-1", "INSTR-1", "TX-1")
    assert payment.counterparty_name == "Ivan Petrov"
    assert payment.counterparty_account == "DE02120300000000202051"
    assert payment.counterparty_bank == "BYLADEM1001"
    assert payment.remittance == "Order 1 part 2"
    assert payment.purpose == "GDDS"
    assert (payment.instructed_amount, payment.instructed_currency) == (200000, "CNY")
    assert payment.document_type == "PMNT/RCDT/ESCT"
    fee = lines[1]
    assert fee.signed_amount == -9999
    assert (fee.counterparty_name, fee.counterparty_account) == ("Acquirer GmbH", "DE75512108001245126199")
    batch = lines[2:4]
    assert [ln.end_to_end_id for ln in batch] == ["PAYOUT-A", "PAYOUT-B"]
    assert [ln.counterparty_name for ln in batch] == ["Alipay", "UnionPay"]
    assert all(ln.bank_reference == "ASR-3" for ln in batch)
    pending = lines[4]
    assert pending.status is EntryStatus.PENDING
    assert pending.booking_date is None
    assert pending.remittance == "pending card credit"


@pytest.mark.parametrize("version", VERSIONS)
def test_opening_plus_booked_movements_is_closing(version: int) -> None:
    check = BalanceCheck()
    items = list(check.watch(parse_camt053(io.BytesIO(_day_statement(version)))))
    assert items
    [result] = check.results()
    assert (result.opening, result.closing, result.movements, result.lines) == (100000, 145076, 45076, 4)
    assert result.ok


def test_a_missing_movement_shows_as_a_difference() -> None:
    data = camt053(8, [Entry("10.00", "CRDT")],
                   balances=[balance_xml("PRCD", "5.00", direction="DBIT"), balance_xml("CLBD", "6.00")])
    check = BalanceCheck()
    list(check.watch(parse_camt053(io.BytesIO(data))))
    [result] = check.results()
    assert result.opening == -500
    assert result.difference == 100
    assert not result.ok


def test_several_statements_and_namespace_prefixes() -> None:
    data = (document_open(11) + statement_open("S-EUR") + entry_xml(11, Entry("2.50", "CRDT")) + "</Stmt>"
            + statement_open("S-CNY", iban="CN0000000000000000000001", currency="CNY")
            + entry_xml(11, Entry("1.00", "DBIT", currency="CNY")) + "</Stmt>" + DOCUMENT_CLOSE)
    # the same document with every element under an explicit prefix
    prefixed = (data.replace("<", "<c:").replace("<c:/", "</c:").replace("<c:?", "<?")
                .replace('<c:Document xmlns="', '<c:Document xmlns:c="'))
    for text in (data, prefixed):
        lines = _lines(_parse(text.encode()))
        assert [(ln.statement_id, ln.account, ln.currency, ln.signed_amount, ln.line_number)
                for ln in lines] == [("S-EUR", OUR_IBAN, "EUR", 250, 1),
                                     ("S-CNY", "CN0000000000000000000001", "CNY", -100, 2)]


def test_reversal_and_datetime_dates() -> None:
    data = camt053(8, [Entry("7.00", "DBIT", reversal=True, booking=None, value=None)])
    data = data.replace(b"<Sts>", b"<BookgDt><DtTm>2024-03-01T23:30:00+03:00</DtTm></BookgDt><Sts>")
    # schema order puts BookgDt after Sts; order does not matter to the reader
    [line] = _lines(_parse(data))
    assert line.reversal
    assert line.booking_date == dt.date(2024, 3, 1)
    assert line.value_date is None


@pytest.mark.parametrize(("entry", "field", "reason"), [
    (Entry("12,50", "CRDT"), "Ntry/Amt", "not a decimal amount"),
    (Entry("1.234", "CRDT"), "Ntry/Amt", "more than 2 decimals"),
    (Entry("12.00", "CRDT", currency="XYZ"), "Ntry/Amt", "not an ISO 4217"),
    (Entry("-12.00", "CRDT"), "Ntry/Amt", "carry no sign"),
    (Entry("12.00", "BOTH"), "Ntry/CdtDbtInd", "neither CRDT nor DBIT"),
    (Entry("12.00", "CRDT", status="DONE"), "Ntry/Sts", "unknown entry status"),
    (Entry("12.00", "CRDT", booking="2024-02-30"), "Ntry/BookgDt", "not an ISO 8601 date"),
    (Entry("12.00", "CRDT", txs=[Tx(amount="5.00"), Tx(amount="6.00")]), "Ntry/NtryDtls/TxDtls/Amt",
     "add up to 1100, the entry books 1200"),
    (Entry("12.00", "CRDT", txs=[Tx(instructed=("1.5.0", "CNY"))]), "TxDtls/AmtDtls/InstdAmt/Amt",
     "not a decimal amount"),
])
def test_bad_entries_become_error_items_and_good_ones_still_come(entry: Entry, field: str,
                                                                 reason: str) -> None:
    data = camt053(8, [Entry("1.00", "CRDT"), entry, Entry("3.00", "DBIT")])
    items = _parse(data)
    [error] = _errors(items)
    assert (error.line_number, error.field, error.statement_id) == (2, field, "STMT-2024-03-01")
    assert reason in error.reason
    assert [(ln.line_number, ln.signed_amount) for ln in _lines(items)] == [(1, 100), (3, -300)]


def test_a_bad_batch_transaction_names_its_position() -> None:
    entry = Entry("12.00", "CRDT", txs=[Tx(amount="5.00"), Tx(amount="x"), Tx(amount="7.00")])
    items = _parse(camt053(2, [entry]))
    [error] = _errors(items)
    assert (error.line_number, error.sub_index, error.field) == (1, 2, "TxDtls/AmtDtls/TxAmt/Amt")
    assert [ln.sub_index for ln in _lines(items)] == [1, 3]


def test_missing_amount_and_foreign_batch_currency() -> None:
    no_amount = entry_xml(8, Entry("1.00", "CRDT")).replace('<Amt Ccy="EUR">1.00</Amt>', "")
    foreign = Entry("3.00", "CRDT", txs=[Tx(amount="1.00"), Tx(amount="2.00", currency="USD")])
    data = (document_open(8) + statement_open() + no_amount + entry_xml(8, foreign) + "</Stmt>"
            + DOCUMENT_CLOSE).encode()
    errors = _errors(_parse(data))
    assert [(e.line_number, e.sub_index, e.field) for e in errors] == [
        (1, 0, "Ntry/Amt"), (2, 2, "TxDtls/Amt")]
    assert errors[0].reason == "missing"


def test_statement_without_account_cannot_attribute_entries() -> None:
    data = camt053(8, [Entry("1.00", "CRDT")]).replace(
        f"<Acct><Id><IBAN>{OUR_IBAN}</IBAN></Id><Ccy>EUR</Ccy></Acct>".encode(), b"")
    items = _parse(data)
    assert not _lines(items)
    assert [(e.line_number, e.field) for e in _errors(items)] == [(0, "Stmt/Acct/Id"), (1, "Stmt/Acct/Id")]


@pytest.mark.parametrize(("document", "message"), [
    (b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.052.001.08">'
     b"<BkToCstmrAcctRpt/></Document>", "not a camt.053 Document"),
    (b"<Document><BkToCstmrStmt/></Document>", "not a camt.053 Document"),
    (b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><CstmrCdtTrfInitn/></Document>',
     "not BkToCstmrStmt"),
    (b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"/>', "empty"),
    (b"<html><body>Service unavailable</body></html>", "not a camt.053 Document"),
    (b"<?xml version='1.0'?>\n<Document", "not well-formed at the start"),
])
def test_other_xml_is_refused_before_any_item(document: bytes, message: str) -> None:
    with pytest.raises(UnusableStatement, match=message):
        parse_statement(io.BytesIO(document))


@pytest.mark.parametrize(("document", "line", "field"), [
    (b"", 1, "Document"),
    (b'<?xml version="1.0"?>\n', 2, "Document"),
    (b'<?xml version="1.0"?>\n\n<html>\n<body/></html>', 3, "Document"),
    (b'<?xml version="1.0"?>\n<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">\n'
     b"  <CstmrCdtTrfInitn/></Document>", 3, "BkToCstmrStmt"),
    (b'<?xml version="1.0"?>\n<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">\n</Document>',
     2, "BkToCstmrStmt"),
])
def test_a_file_refused_whole_names_the_line_and_the_element_expected(document: bytes, line: int,
                                                                      field: str) -> None:
    with pytest.raises(UnusableStatement) as raised:
        parse_camt053(io.BytesIO(document))
    assert (raised.value.line_number, raised.value.field_name) == (line, field)


def test_xml_that_breaks_off_raises_after_the_good_entries() -> None:
    data = camt053(8, [Entry("1.00", "CRDT"), Entry("2.00", "CRDT")])
    truncated = data[: data.index(b"<Ntry>", data.index(b"<Ntry>") + 1) + 20]
    items = parse_statement(io.BytesIO(truncated))
    first = next(items)
    assert isinstance(first, StatementLine)
    assert first.amount == 100
    with pytest.raises(UnusableStatement, match="not well-formed mid-stream") as raised:
        next(items)
    assert raised.value.line_number == 2
