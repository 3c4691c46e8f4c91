"""1CClientBankExchange statements in cp1251 and cp866: directions, balances, errors."""

# Russian test data is Cyrillic on purpose; letters such as О and а are not typos.
# ruff: noqa: RUF001, RUF003

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
    parse_client_bank_exchange,
    parse_statement,
)
from adapters.statements.client_bank_exchange import MAX_HEADER_LINES
from tests.adapters.statements.factories import (
    OTHER_ACCOUNT,
    OUR_ACCOUNT,
    one_c_account_section,
    one_c_document,
    one_c_file,
    one_c_header,
)

SECOND_ACCOUNT = "40702810100000000002"


def _parse(data: bytes, **options: object) -> list[StatementItem]:
    return list(parse_statement(io.BytesIO(data), **options))  # type: ignore[arg-type]


def _lines(items: list[StatementItem]) -> list[StatementLine]:
    return [item for item in items if isinstance(item, StatementLine)]


def _errors(items: list[StatementItem]) -> list[StatementLineError]:
    return [item for item in items if isinstance(item, StatementLineError)]


def _day(encoding: str) -> bytes:
    """Opening 1 000.00; +1 234.56 in, -200.00 out (to a supplier), +0.05; closing 2 034.61."""
    return one_c_file([
        *one_c_account_section(opening="1000.00", closing="2034.61", credits="1234.61", debits="200.00"),
        *one_c_document("15", "1234.56", purpose="Оплата заказа №42, НДС не облагается"),
        *one_c_document("16", "200", payer=OUR_ACCOUNT, payee=OTHER_ACCOUNT, purpose="Возврат покупателю по заказу №7"),
        *one_c_document("17", "0.05"),
    ], encoding=encoding)


@pytest.mark.parametrize("encoding", ["cp1251", "cp866"])
def test_documents_and_balances(encoding: str) -> None:
    items = _parse(_day(encoding))
    assert not _errors(items)
    balances = [item for item in items if isinstance(item, StatementBalance)]
    assert [(b.type_code, b.amount, b.currency, b.date) for b in balances] == [
        ("OPBD", 100000, "RUB", dt.date(2024, 3, 1)), ("CLBD", 203461, "RUB", dt.date(2024, 3, 1))]
    lines = _lines(items)
    assert [(ln.document_number, ln.direction, ln.amount) for ln in lines] == [
        ("15", Direction.CREDIT, 123456), ("16", Direction.DEBIT, 20000), ("17", Direction.CREDIT, 5)]
    incoming, outgoing, _ = lines
    assert incoming.format is StatementFormat.CLIENT_BANK_EXCHANGE
    assert (incoming.account, incoming.statement_id) == (OUR_ACCOUNT, f"{OUR_ACCOUNT}:01.03.2024..01.03.2024")
    assert incoming.status is EntryStatus.BOOKED
    assert incoming.booking_date == incoming.value_date == incoming.document_date == dt.date(2024, 3, 1)
    assert incoming.document_type == "Платежное поручение"
    assert incoming.remittance == "Оплата заказа №42, НДС не облагается"
    assert (incoming.counterparty_name, incoming.counterparty_account) == ('ООО "Ромашка"', OTHER_ACCOUNT)
    assert (incoming.counterparty_tax_id, incoming.counterparty_bank) == ("7701234567", "044525225")
    assert outgoing.counterparty_name == 'ООО "Маркетплейс"'
    assert outgoing.counterparty_account == OTHER_ACCOUNT
    assert outgoing.remittance == "Возврат покупателю по заказу №7"
    assert incoming.line_number < outgoing.line_number
    data = _day(encoding)
    opened = data.split(b"\r\n")[incoming.line_number - 1]
    assert opened.decode(encoding) == "СекцияДокумент=Платежное поручение"


@pytest.mark.parametrize("encoding", ["cp1251", "cp866"])
def test_opening_plus_movements_is_closing(encoding: str) -> None:
    check = BalanceCheck()
    list(check.watch(parse_statement(io.BytesIO(_day(encoding)))))
    [result] = check.results()
    assert (result.opening, result.closing, result.movements) == (100000, 203461, 103461)
    assert result.ok


def test_transfer_between_our_accounts_gives_both_sides() -> None:
    data = one_c_file([*one_c_document("3", "10.00", payer=OUR_ACCOUNT, payee=SECOND_ACCOUNT)],
                      accounts=[OUR_ACCOUNT, SECOND_ACCOUNT])
    lines = _lines(_parse(data))
    assert [(ln.account, ln.direction, ln.sub_index, ln.signed_amount) for ln in lines] == [
        (OUR_ACCOUNT, Direction.DEBIT, 1, -1000), (SECOND_ACCOUNT, Direction.CREDIT, 2, 1000)]


def test_caller_names_our_account_when_the_header_does_not() -> None:
    data = one_c_file([*one_c_document("3", "10.00")], accounts=[])
    assert [e.field for e in _errors(_parse(data))] == ["ПлательщикСчет/ПолучательСчет"]
    [line] = _lines(_parse(data, accounts=[OUR_ACCOUNT]))
    assert line.direction is Direction.CREDIT


def test_unfilled_booking_date_is_none() -> None:
    [line] = _lines(_parse(one_c_file([*one_c_document("3", "10.00", ДатаПоступило="")])))
    assert line.booking_date is None
    assert line.document_date == dt.date(2024, 3, 1)


@pytest.mark.parametrize(("document", "field", "reason"), [
    (one_c_document("2", "12.5О"), "Сумма", "not a decimal amount"),   # a Cyrillic О for a zero
    (one_c_document("2", "abc"), "Сумма", "not a decimal amount"),
    (one_c_document("2", "12.345"), "Сумма", "more than 2 decimals"),
    (one_c_document("2", "12,34"), "Сумма", "not a decimal amount"),
    (one_c_document("2", "-5.00"), "Сумма", "carry no sign"),
    (one_c_document("2", "1.00", drop=["Сумма"]), "Сумма", "missing"),
    (one_c_document("2", "1.00", drop=["Номер"]), "Номер", "missing"),
    (one_c_document("2", "1.00", drop=["ПолучательСчет"]), "ПолучательСчет", "missing"),
    (one_c_document("2", "1.00", Дата="31.02.2024"), "Дата", "not a DD.MM.YYYY date"),
    (one_c_document("2", "1.00", payee=OTHER_ACCOUNT), "ПлательщикСчет/ПолучательСчет", "neither"),
])
def test_bad_documents_become_error_items(document: list[str], field: str, reason: str) -> None:
    data = one_c_file([*one_c_document("1", "1.00"), *document, *one_c_document("3", "3.00")])
    items = _parse(data)
    [error] = _errors(items)
    second_document = len(one_c_header()) + len(one_c_document("1", "1.00")) + 1
    assert (error.field, error.line_number) == (field, second_document)
    assert reason in error.reason
    assert [ln.document_number for ln in _lines(items)] == ["1", "3"]


def test_stray_and_unclosed_sections() -> None:
    data = one_c_file([
        "мусор без знака равенства",
        *one_c_document("1", "1.00")[:-1],          # never closed
        *one_c_document("2", "2.00"),
        "КонецДокумента",                            # closes nothing
        "СекцияРасчСчет", "РасчСчет=" + OUR_ACCOUNT, "КонецДокумента",   # closed by the wrong end
    ])
    items = _parse(data)
    assert [(e.field, e.reason) for e in _errors(items)] == [
        ("мусор без знака равенства", "not a key=value header line"),
        ("Платежное поручение", "section is not closed"),
        ("КонецДокумента", "line outside any section"),
        ("КонецДокумента", "СекцияРасчСчет closed by КонецДокумента"),
    ]
    assert [ln.document_number for ln in _lines(items)] == ["2"]


def test_truncated_file_ends_with_an_error_item() -> None:
    items = _parse(one_c_file([*one_c_document("1", "1.00"), *one_c_document("2", "2.00")[:5]], end=False))
    assert [ln.document_number for ln in _lines(items)] == ["1"]
    assert [e.reason for e in _errors(items)] == [
        "section is not closed", "file ends without КонецФайла (truncated?)"]


@pytest.mark.parametrize(("data", "message", "line"), [
    (one_c_file([*one_c_document("1", "1.00")]).decode("cp1251").encode("utf-8"),
     "read neither as cp1251", 2),
    (one_c_file([*one_c_document("1", "1.00")], encoding="cp866", encoding_name="Windows"),
     "Кодировка=Windows but the file is written in cp866", 3),
    (one_c_file([*one_c_document("1", "1.00")], encoding="cp1251", encoding_name="DOS"),
     "Кодировка=DOS but the file is written in cp1251", 3),
    (one_c_file([*one_c_document("1", "1.00")], encoding_name="UTF-8"),
     "Кодировка=UTF-8 but the file is written in cp1251", 3),
])
def test_wrong_encoding_is_refused_at_once(data: bytes, message: str, line: int) -> None:
    with pytest.raises(UnusableStatement, match=message) as raised:
        parse_statement(io.BytesIO(data))
    assert (raised.value.line_number, raised.value.field_name) == (line, "Кодировка")


def test_missing_encoding_line_is_detected_from_the_bytes() -> None:
    data = one_c_file([*one_c_document("1", "1.00")], encoding="cp866")
    data = data.replace("Кодировка=DOS\r\n".encode("cp866"), b"")
    [line] = _lines(_parse(data))
    assert line.remittance == "Оплата по договору"


def test_header_is_required() -> None:
    with pytest.raises(UnusableStatement, match="not 1CClientBankExchange"):
        parse_client_bank_exchange(io.BytesIO("ВерсияФормата=1.03\r\n".encode("cp1251")))
    with pytest.raises(UnusableStatement, match="empty") as raised:
        parse_client_bank_exchange(io.BytesIO(b""))
    assert (raised.value.line_number, raised.value.field_name) == (1, "1CClientBankExchange")


def test_a_header_with_no_section_names_the_line_and_the_section_expected() -> None:
    data = ("\r\n".join(["1CClientBankExchange", *(["Получатель="] * (MAX_HEADER_LINES + 5))]) + "\r\n")
    with pytest.raises(UnusableStatement, match="no section") as raised:
        parse_client_bank_exchange(io.BytesIO(data.encode("cp1251")))
    assert (raised.value.line_number, raised.value.field_name) == (MAX_HEADER_LINES + 2, "СекцияРасчСчет")


def test_a_line_not_in_the_encoding_names_its_key() -> None:
    data = one_c_file([*one_c_document("1", "1.00")]).replace(
        "НазначениеПлатежа=Оплата".encode("cp1251"), "НазначениеПлатежа=".encode("cp1251") + b"\x98")
    [error] = _errors(_parse(data))
    assert error.field == "НазначениеПлатежа"
    assert "not cp1251" in error.reason


def test_bare_header_is_detected_from_the_first_section() -> None:
    body = [*one_c_document("9", "9.99"), "КонецФайла"]
    data = ("\r\n".join(["1CClientBankExchange", *body]) + "\r\n").encode("cp866")
    [line] = _lines(_parse(data, accounts=[OUR_ACCOUNT]))
    assert (line.amount, line.remittance) == (999, "Оплата по договору")
