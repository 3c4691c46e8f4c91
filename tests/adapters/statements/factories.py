"""Builders of camt.053 and 1CClientBankExchange files for the statement tests.

The camt.053 builder writes each schema version's own shape (entry status as text
up to .06 and as ``Sts/Cd`` from .07, ``Dbtr/Nm`` up to .07 and ``Dbtr/Pty/Nm``
from .08, ``TxAmt`` in .02 and ``TxDtls/Amt`` later, ``BIC`` in .02 and ``BICFI``
later), so one test can run against several versions. The ``*_chunks`` builders
produce huge files lazily, without holding them in memory or on disk.
"""

# Russian test data is Cyrillic on purpose; letters such as О and а are not typos.
# ruff: noqa: RUF001, RUF003

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

CAMT_NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version:02d}"
OUR_IBAN = "DE89370400440532013000"
OUR_ACCOUNT = "40702810900000000001"
OTHER_ACCOUNT = "40702810500000000777"


@dataclass
class Tx:
    """One ``TxDtls``. ``amount`` is decimal text; ``None`` leaves the amount out."""

    amount: str | None = None
    end_to_end_id: str = ""
    instruction_id: str = ""
    transaction_id: str = ""
    name: str = ""
    account: str = ""
    bic: str = ""
    remittance: tuple[str, ...] = ()
    purpose: str = ""
    direction: str | None = None
    currency: str = "EUR"
    instructed: tuple[str, str] | None = None   # (amount, currency)


@dataclass
class Entry:
    amount: str
    direction: str
    currency: str = "EUR"
    status: str = "BOOK"
    booking: str | None = "2024-03-01"
    value: str | None = "2024-03-01"
    reference: str = ""
    bank_reference: str = ""
    reversal: bool = False
    info: str = ""
    txs: list[Tx] = field(default_factory=list)


def _amount(tag: str, amount: str, currency: str) -> str:
    return f'<{tag} Ccy="{currency}">{amount}</{tag}>'


def _party(version: int, role: str, name: str) -> str:
    inner = f"<Nm>{escape(name)}</Nm>"
    return f"<{role}><Pty>{inner}</Pty></{role}>" if version >= 8 else f"<{role}>{inner}</{role}>"


def tx_xml(version: int, tx: Tx, entry_direction: str) -> str:
    credit = (tx.direction or entry_direction) == "CRDT"
    role, agent = ("Dbtr", "DbtrAgt") if credit else ("Cdtr", "CdtrAgt")
    refs = "".join(f"<{tag}>{escape(value)}</{tag}>" for tag, value in (
        ("InstrId", tx.instruction_id), ("EndToEndId", tx.end_to_end_id), ("TxId", tx.transaction_id))
        if value)
    parts = [f"<Refs>{refs}</Refs>" if refs else ""]
    instructed = _amount("Amt", *tx.instructed) if tx.instructed else ""
    if version == 2:
        tx_amount = _amount("Amt", tx.amount, tx.currency) if tx.amount is not None else ""
        amounts = (f"<InstdAmt>{instructed}</InstdAmt>" if instructed else "") + (
            f"<TxAmt>{tx_amount}</TxAmt>" if tx_amount else "")
        parts.append(f"<AmtDtls>{amounts}</AmtDtls>" if amounts else "")
    else:
        if tx.amount is not None:
            parts.append(_amount("Amt", tx.amount, tx.currency))
        if tx.direction:
            parts.append(f"<CdtDbtInd>{tx.direction}</CdtDbtInd>")
        parts.append(f"<AmtDtls><InstdAmt>{instructed}</InstdAmt></AmtDtls>" if instructed else "")
    if tx.name or tx.account:
        party = _party(version, role, tx.name) if tx.name else ""
        account = f"<{role}Acct><Id><IBAN>{tx.account}</IBAN></Id></{role}Acct>" if tx.account else ""
        parts.append(f"<RltdPties>{party}{account}</RltdPties>")
    if tx.bic:
        bic = "BIC" if version == 2 else "BICFI"
        parts.append(f"<RltdAgts><{agent}><FinInstnId><{bic}>{tx.bic}</{bic}></FinInstnId></{agent}></RltdAgts>")
    if tx.purpose:
        parts.append(f"<Purp><Cd>{tx.purpose}</Cd></Purp>")
    if tx.remittance:
        parts.append("<RmtInf>" + "".join(f"<Ustrd>{escape(u)}</Ustrd>" for u in tx.remittance) + "</RmtInf>")
    return "<TxDtls>" + "".join(parts) + "</TxDtls>"


def entry_xml(version: int, entry: Entry) -> str:
    status = f"<Sts>{entry.status}</Sts>" if version <= 6 else f"<Sts><Cd>{entry.status}</Cd></Sts>"
    parts = [
        f"<NtryRef>{entry.reference}</NtryRef>" if entry.reference else "",
        _amount("Amt", entry.amount, entry.currency),
        f"<CdtDbtInd>{entry.direction}</CdtDbtInd>",
        "<RvslInd>true</RvslInd>" if entry.reversal else "",
        status,
        f"<BookgDt><Dt>{entry.booking}</Dt></BookgDt>" if entry.booking else "",
        f"<ValDt><Dt>{entry.value}</Dt></ValDt>" if entry.value else "",
        f"<AcctSvcrRef>{entry.bank_reference}</AcctSvcrRef>" if entry.bank_reference else "",
        "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>",
    ]
    if entry.txs:
        batch = f"<Btch><NbOfTxs>{len(entry.txs)}</NbOfTxs></Btch>" if len(entry.txs) > 1 else ""
        txs = "".join(tx_xml(version, tx, entry.direction) for tx in entry.txs)
        parts.append(f"<NtryDtls>{batch}{txs}</NtryDtls>")
    if entry.info:
        parts.append(f"<AddtlNtryInf>{escape(entry.info)}</AddtlNtryInf>")
    return "<Ntry>" + "".join(parts) + "</Ntry>"


def balance_xml(code: str, amount: str, currency: str = "EUR", direction: str = "CRDT",
                day: str = "2024-03-01") -> str:
    return (f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>{_amount('Amt', amount, currency)}"
            f"<CdtDbtInd>{direction}</CdtDbtInd><Dt><Dt>{day}</Dt></Dt></Bal>")


def statement_open(statement_id: str = "STMT-2024-03-01", iban: str = OUR_IBAN,
                   currency: str = "EUR") -> str:
    return (f"<Stmt><Id>{statement_id}</Id><CreDtTm>2024-03-02T06:00:00+01:00</CreDtTm>"
            f"<Acct><Id><IBAN>{iban}</IBAN></Id><Ccy>{currency}</Ccy></Acct>")


def document_open(version: int) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{CAMT_NAMESPACE.format(version=version)}">'
            "<BkToCstmrStmt><GrpHdr><MsgId>MSG-1</MsgId><CreDtTm>2024-03-02T06:00:00+01:00</CreDtTm></GrpHdr>")


DOCUMENT_CLOSE = "</BkToCstmrStmt></Document>"


def camt053(version: int, entries: Iterable[Entry], *, balances: Iterable[str] = (),
            statement_id: str = "STMT-2024-03-01", currency: str = "EUR") -> bytes:
    """A one-statement camt.053 document; ``balances`` are :func:`balance_xml` strings."""
    body = "".join(entry_xml(version, entry) for entry in entries)
    return (document_open(version) + statement_open(statement_id, currency=currency) + "".join(balances)
            + body + "</Stmt>" + DOCUMENT_CLOSE).encode()


class GeneratedStream(io.RawIOBase):
    """A read-only binary stream fed by an iterator of chunks, so huge test files
    never exist in memory or on disk as a whole."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""
        self.produced = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        size = min(len(view), len(self._pending))
        view[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        self.produced += size
        return size


def camt053_chunks(version: int, count: int, amount_minor: int = 1234) -> Iterator[bytes]:
    """A statement with ``count`` one-transaction credit entries of ``amount_minor``
    cents each, opening at 0 and closing at the total."""
    total = count * amount_minor
    yield (document_open(version) + statement_open() + balance_xml("OPBD", "0.00")
           + balance_xml("CLBD", f"{total // 100}.{total % 100:02d}")).encode()
    amount = f"{amount_minor // 100}.{amount_minor % 100:02d}"
    batch: list[str] = []
    for index in range(count):
        batch.append(entry_xml(version, Entry(
            amount, "CRDT", bank_reference=f"ASR{index}",
            txs=[Tx(end_to_end_id=f"E2E-{index}", name="Buyer", remittance=(f"Order {index}",))])))
        if len(batch) == 100:
            yield "".join(batch).encode()
            batch.clear()
    yield ("".join(batch) + "</Stmt>" + DOCUMENT_CLOSE).encode()


# -- 1CClientBankExchange ---------------------------------------------------------


def one_c_header(encoding_name: str = "Windows", accounts: Iterable[str] = (OUR_ACCOUNT,)) -> list[str]:
    lines = ["1CClientBankExchange", "ВерсияФормата=1.03", f"Кодировка={encoding_name}",
             "Отправитель=Бухгалтерия предприятия", "Получатель=", "ДатаСоздания=02.03.2024",
             "ВремяСоздания=09:15:00", "ДатаНачала=01.03.2024", "ДатаКонца=01.03.2024"]
    return lines + [f"РасчСчет={account}" for account in accounts]


def one_c_account_section(account: str = OUR_ACCOUNT, opening: str = "1000.00",
                          closing: str = "1000.00", credits: str = "0", debits: str = "0") -> list[str]:
    return ["СекцияРасчСчет", "ДатаНачала=01.03.2024", "ДатаКонца=01.03.2024", f"РасчСчет={account}",
            f"НачальныйОстаток={opening}", f"ВсегоПоступило={credits}", f"ВсегоСписано={debits}",
            f"КонечныйОстаток={closing}", "КонецРасчСчет"]


def one_c_document(number: str, amount: str, *, payer: str = OTHER_ACCOUNT, payee: str = OUR_ACCOUNT,
                   purpose: str = "Оплата по договору", drop: Iterable[str] = (),
                   **extra: str) -> list[str]:
    fields = {
        "Номер": number, "Дата": "01.03.2024", "Сумма": amount,
        "ПлательщикСчет": payer, "Плательщик": f"ИНН 7701234567 ООО \"Ромашка\" {payer}",
        "ПлательщикИНН": "7701234567", "Плательщик1": "ООО \"Ромашка\"", "ПлательщикБИК": "044525225",
        "ПолучательСчет": payee, "Получатель": "ООО \"Маркетплейс\"", "ПолучательИНН": "7707654321",
        "Получатель1": "ООО \"Маркетплейс\"", "ПолучательБИК": "044525974",
        "ВидОплаты": "01", "Очередность": "5", "НазначениеПлатежа": purpose,
        "ДатаСписано": "01.03.2024" if payer == OUR_ACCOUNT else "",
        "ДатаПоступило": "01.03.2024" if payee == OUR_ACCOUNT else "",
    }
    fields.update(extra)
    for key in drop:
        fields.pop(key, None)
    return ["СекцияДокумент=Платежное поручение", *(f"{k}={v}" for k, v in fields.items()),
            "КонецДокумента"]


def one_c_file(body: Iterable[str], *, encoding: str = "cp1251", encoding_name: str | None = None,
               accounts: Iterable[str] = (OUR_ACCOUNT,), end: bool = True) -> bytes:
    name = encoding_name or {"cp1251": "Windows", "cp866": "DOS"}.get(encoding, "Windows")
    lines = [*one_c_header(name, accounts), *body, *(["КонецФайла"] if end else [])]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def one_c_chunks(count: int, amount_minor: int = 1234, encoding: str = "cp1251") -> Iterator[bytes]:
    """A 1C file with ``count`` incoming payments of ``amount_minor`` kopecks each,
    opening at 0 and closing at the total."""
    total = count * amount_minor
    closing = f"{total // 100}.{total % 100:02d}"
    amount = f"{amount_minor // 100}.{amount_minor % 100:02d}"
    head = [*one_c_header({"cp1251": "Windows", "cp866": "DOS"}[encoding]),
            *one_c_account_section(opening="0.00", closing=closing, credits=closing)]
    yield ("\r\n".join(head) + "\r\n").encode(encoding)
    batch: list[str] = []
    for index in range(count):
        batch.extend(one_c_document(str(index + 1), amount, purpose=f"Оплата заказа {index}"))
        if len(batch) > 2_000:
            yield ("\r\n".join(batch) + "\r\n").encode(encoding)
            batch.clear()
    yield ("\r\n".join([*batch, "КонецФайла"]) + "\r\n").encode(encoding)
