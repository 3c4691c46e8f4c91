"""Reconciliation test factories: expectations, settlement records written by the rails'
own file writers, statements, and a harness that registers, runs and inspects."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import text

from adapters.alipay.files import write_settlement
from adapters.base import RecordType, SettlementRecord
from adapters.mir.register import write_register
from adapters.unionpay.files import write_zm
from settlement.config import Settings
from settlement.db import SessionFactory, unit_of_work
from settlement.reconciliation import runner
from settlement.reconciliation.expectations import ExpectationSpec, expect, expect_many
from settlement.reconciliation.models import FileKind
from settlement.reconciliation.service import files, runs

#: A Wednesday: T+1 is Thursday, missing after the Monday that follows.
DAY = dt.date(2026, 11, 18)
SETTLED = dt.date(2026, 11, 19)
CURRENCY = {"mir": "RUB", "unionpay": "CNY", "alipay": "CNY"}
FEE_RATE = {"mir": Decimal("0.015"), "unionpay": Decimal("0.006"), "alipay": Decimal("0.006")}


def fee_of(rail: str, gross: int) -> int:
    return int((Decimal(abs(gross)) * FEE_RATE[rail]).quantize(Decimal(1), rounding="ROUND_HALF_UP"))


@dataclasses.dataclass
class Op:
    """One operation: its expectation and the record the rail writes for it."""

    rail: str
    reference: str
    rail_reference: str
    rrn: str
    amount: int
    kind: str = "payment"
    day: dt.date = DAY
    currency: str = ""
    fx_rate: Decimal | None = None

    def __post_init__(self) -> None:
        self.currency = self.currency or CURRENCY[self.rail]

    @property
    def record_type(self) -> RecordType:
        return {"payment": RecordType.PAYMENT, "refund": RecordType.REFUND, "payout": RecordType.PAYOUT}[self.kind]

    @property
    def gross(self) -> int:
        return self.amount if self.kind == "payment" else -self.amount

    @property
    def fee(self) -> int:
        return fee_of(self.rail, self.gross) if self.kind == "payment" else 0

    def record(self, *, settled: dt.date = SETTLED, fee_delta: int = 0, amount_delta: int = 0,
               rate: Decimal | None = None) -> SettlementRecord:
        gross, fee = self.gross + amount_delta, self.fee + fee_delta
        net = gross - fee
        fx_rate = rate or self.fx_rate
        settlement = None
        if fx_rate is not None:
            settlement = int((Decimal(net) * fx_rate).quantize(Decimal(1), rounding="ROUND_HALF_UP"))
        return SettlementRecord(self.rail, 0, self.record_type, self.rail_reference, self.reference, gross, fee, net,
                                self.currency, self.day, settled, self.rrn, settlement_amount=settlement,
                                settlement_currency="CNY" if fx_rate is not None else None, fx_rate=fx_rate)


def ops(rail: str, count: int, *, start: int = 1, amount: int = 10_000, kind: str = "payment") -> list[Op]:
    """``count`` operations with distinct keys and amounts."""
    return [Op(rail, f"{rail[:2]}-{kind[:3]}-{n}", f"{n:012d}", f"{n + 500_000:012d}", amount + n, kind=kind)
            for n in range(start, start + count)]


def write_file(rail: str, records: Iterable[SettlementRecord], settled: dt.date = SETTLED) -> bytes:
    """The rail's settlement file, written by the rail package's own writer."""
    out = io.BytesIO()
    if rail == "mir":
        write_register(out, records)
    elif rail == "unionpay":
        write_zm(out, records, settlement_date=settled)
    else:
        write_settlement(out, records)
    return out.getvalue()


class Harness:
    """A fresh database with the reconciliation tables, and shortcuts (portable SQL:
    the same assertions run on PostgreSQL and SQLite)."""

    def __init__(self, factory: SessionFactory, settings: Settings) -> None:
        self.factory = factory
        self.settings = settings

    def expect(self, *operations: Op, expected_fee: bool = True, **extra: Any) -> None:
        """Expectations of ``operations``: through :func:`expect` for a few, the bulk path
        (COPY) for many."""
        with unit_of_work(self.factory) as session:
            if len(operations) > 50:
                expect_many(session, [ExpectationSpec(
                    op.rail, op.kind, op.reference, op.rail_reference, op.amount, op.currency, op.day, op.rrn,
                    op.fee if expected_fee else None, "CNY" if op.fx_rate is not None else None, None, op.fx_rate,
                    **extra) for op in operations], settings=self.settings)
                return
            for op in operations:
                expect(session, rail=op.rail, kind=op.kind, reference=op.reference, rail_reference=op.rail_reference,
                       amount=op.amount, currency=op.currency, transaction_date=op.day, rrn=op.rrn,
                       expected_fee=op.fee if expected_fee else None,
                       settlement_currency="CNY" if op.fx_rate is not None else None, fx_rate=op.fx_rate, **extra)

    def register(self, data: bytes | Path, *, rail: str | None = "mir", name: str = "file",
                 kind: FileKind = FileKind.SETTLEMENT) -> tuple[int, bool]:
        """Register ``data`` (bytes, or a file streamed from its path)."""
        with unit_of_work(self.factory) as session, (
                data.open("rb") if isinstance(data, Path) else io.BytesIO(data)) as source:
            found = files.register_file(session, self.settings, kind=kind, rail=rail, source=source,
                                        filename=name, actor="cli:tester")
            return found.file.id, found.created

    def reconcile(self, data: bytes | Path, *, rail: str | None = "mir", dry_run: bool = False, name: str = "file",
                  kind: FileKind = FileKind.SETTLEMENT) -> tuple[int, dict[str, Any]]:
        file_id, _ = self.register(data, rail=rail, name=name, kind=kind)
        with unit_of_work(self.factory) as session:
            run_id = runs.create_run(session, file_id=file_id, dry_run=dry_run, actor="cli:tester").id
        return run_id, runner.execute(self.factory, self.settings, run_id)

    def sql(self, query: str, **params: Any) -> list[Any]:
        with self.factory() as session:
            return list(session.execute(text(query), params).all())

    def scalar(self, query: str, **params: Any) -> Any:
        with self.factory() as session:
            return session.execute(text(query), params).scalar()

    def balance(self, code: str) -> int:
        """Posted debits - credits of the account (0 when it does not exist)."""
        value = self.scalar("SELECT debits_posted - credits_posted FROM ledger_accounts WHERE code = :c", c=code)
        return int(value or 0)

    def balances(self, prefix: str = "") -> dict[str, int]:
        return {code: int(d - c) for code, d, c in self.sql(
            "SELECT code, debits_posted, credits_posted FROM ledger_accounts WHERE code LIKE :p ORDER BY code",
            p=f"{prefix}%") if d != c}

    def outcomes(self, run_id: int) -> dict[str, int]:
        return {o: int(n) for o, n in self.sql(
            "SELECT outcome, count(*) FROM recon_matches WHERE run_id = :r GROUP BY outcome", r=run_id)}

    def results(self, run_id: int) -> list[dict[str, Any]]:
        """(outcome, rule, shape, references of the records and expectations) per match."""
        items: dict[int, list[str]] = {}
        for match_id, reference in self.sql("""
                SELECT x.match_id, i.reference FROM recon_matches m JOIN recon_match_items x ON x.match_id = m.id
                JOIN recon_file_items i ON i.id = x.item_id WHERE m.run_id = :r ORDER BY i.line_number""", r=run_id):
            items.setdefault(match_id, []).append(reference)
        expected: dict[int, list[str]] = {}
        for match_id, reference in self.sql("""
                SELECT x.match_id, e.reference FROM recon_matches m
                JOIN recon_match_expectations x ON x.match_id = m.id
                JOIN recon_expectations e ON e.id = x.expectation_id WHERE m.run_id = :r""", r=run_id):
            expected.setdefault(match_id, []).append(reference)
        return [{"id": match_id, "outcome": outcome, "rule": rule, "shape": shape,
                 "items": ",".join(items.get(match_id, [])), "expected": ",".join(sorted(expected.get(match_id, [])))}
                for match_id, outcome, rule, shape in self.sql(
                    "SELECT id, outcome, rule, shape FROM recon_matches WHERE run_id = :r ORDER BY id", r=run_id)]

    def by_expected(self, run_id: int) -> dict[str, str]:
        return {r["expected"]: r["outcome"] for r in self.results(run_id) if r["expected"]}

    def states(self) -> dict[str, str]:
        """Expectation reference -> ``settled`` (claimed by a match: which outcome),
        its finance status otherwise (open, written_off, ignored)."""
        return {ref: (f"settled:{outcome}" if outcome else status) for ref, status, outcome in self.sql("""
            SELECT e.reference, e.status, (SELECT m.outcome FROM recon_match_expectations l
                                           JOIN recon_matches m ON m.id = l.match_id
                                           WHERE l.expectation_id = e.id AND l.claimed)
            FROM recon_expectations e""")}

    def entries(self) -> int:
        return int(self.scalar("SELECT count(*) FROM ledger_entries"))


def statement_camt(lines: Sequence[tuple[int, dt.date, str]], *, account: str = "40702810900000000001",
                   currency: str = "RUB") -> bytes:
    """A camt.053.001.08 statement with one booked credit (or debit, negative) per line:
    (signed minor units, booking date, end-to-end id)."""
    entries = []
    for amount, day, e2e in lines:
        direction = "CRDT" if amount >= 0 else "DBIT"
        value = f"{abs(amount) // 100}.{abs(amount) % 100:02d}"
        entries.append(
            f"<Ntry><Amt Ccy=\"{currency}\">{value}</Amt><CdtDbtInd>{direction}</CdtDbtInd>"
            f"<Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>{day.isoformat()}</Dt></BookgDt>"
            f"<ValDt><Dt>{day.isoformat()}</Dt></ValDt><AcctSvcrRef>{e2e}</AcctSvcrRef>"
            f"<NtryDtls><TxDtls><Refs><EndToEndId>{e2e}</EndToEndId></Refs></TxDtls></NtryDtls></Ntry>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>'
        "<GrpHdr><MsgId>MSG1</MsgId><CreDtTm>2026-11-25T10:00:00</CreDtTm></GrpHdr>"
        f"<Stmt><Id>STMT1</Id><CreDtTm>2026-11-25T10:00:00</CreDtTm><Acct><Id><Othr><Id>{account}</Id></Othr></Id>"
        f"<Ccy>{currency}</Ccy></Acct>" + "".join(entries) + "</Stmt></BkToCstmrStmt></Document>").encode()


def settings_for(url: str, data_dir: Path, **overrides: Any) -> Settings:
    return Settings(database_url=url, data_dir=data_dir, recon_booking_chunk=overrides.pop("recon_booking_chunk", 3),
                    **overrides)
