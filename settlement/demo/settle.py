"""The end of the day: each rail's simulator writes its settlement file with the
planned discrepancies, the bank's statement reports what reached the accounts, and
finance reconciles every file through the API.

Files are dated on a settlement day past every rail's SLA for today's payments, so
a payment a file leaves out is missing, not merely not yet settled.
"""

from __future__ import annotations

import datetime as dt
import io
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.base import Discrepancy, RailSimulator, SettlementRecord
from settlement.config import Settings
from settlement.demo.day import Api, DayResult, operations
from settlement.demo.errors import DemoStepFailed
from settlement.demo.plan import STATEMENT_MISSING_RAIL, STATEMENT_UNEXPECTED, Plan
from settlement.demo.progress import Reporter
from settlement.demo.statement import StatementLine, camt053
from settlement.reconciliation import rails as recon_rails

#: Seconds a run may take before the demo gives up on it.
RUN_TIMEOUT = 300


@dataclass
class SettlementFile:
    rail: str
    path: Path
    applied: list[dict[str, Any]]
    records: int
    #: What the rail pays, by currency (the net of every record): the batch the bank sees.
    net: dict[str, int]


@dataclass
class RunResult:
    run_id: int
    kind: str
    rail: str
    filename: str
    status: str
    outcomes: dict[str, int]
    summary: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def settlement_day(settings: Settings, today: dt.date | None = None) -> dt.date:
    """A day after which every rail counts today's payments missing if not settled."""
    base = today or dt.datetime.now(dt.UTC).date()
    # The rails' business days run east of UTC: their day may already be tomorrow.
    latest = max(recon_rails.calendar(rail, settings).missing_after(base + dt.timedelta(days=1))
                 for rail in ("mir", "unionpay", "alipay"))
    return latest + dt.timedelta(days=1)


def file_name(rail: str, day: dt.date, config: dict[str, str]) -> str:
    """The rail's own naming: UnionPay's ZM file carries its clearing date in the name."""
    if rail == "unionpay":
        return f"INN{day:%y%m%d}01ZM_{config.get('mer_id', '000000000000000')}"
    if rail == "mir":
        return f"mir-register-{day:%Y%m%d}.csv"
    return f"alipay-settlement-{day:%Y%m%d}.txt"


def write_files(simulators: dict[str, RailSimulator], plan: Plan, day_result: DayResult, day: dt.date, out: Path,
                *, api_url: str, checkout_key: str, settings: Settings,
                reporter: Reporter) -> list[SettlementFile]:
    """Each simulator's settlement file for ``day``, with the plan's discrepancies."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[SettlementFile] = []
    reporter.begin("Rails write their settlement files", total=len(simulators))
    for rail, simulator in simulators.items():
        wanted = [_discrepancy(d.kind, d.payment, d.delta, day_result, api_url=api_url, key=checkout_key)
                  for d in plan.discrepancies if d.rail == rail]
        buffer = io.BytesIO()
        applied = simulator.write_settlement_file(buffer, day, wanted)
        if len(applied) != len(wanted):
            raise DemoStepFailed(f"the {rail} simulator applied {len(applied)} of {len(wanted)} discrepancies",
                                 rail=rail)
        path = out / file_name(rail, day, simulator.adapter_config())
        path.write_bytes(buffer.getvalue())
        records, net = _net(rail, path, settings)
        written.append(SettlementFile(rail, path, [{"kind": a.kind.value, "reference": a.reference,
                                                    "delta": a.delta} for a in applied], records, net))
        reporter.advance()
    reporter.end(", ".join(f"{f.rail} {f.records} records" for f in written))
    return written


def _discrepancy(kind: Any, index: int | None, delta: int, day_result: DayResult, *, api_url: str,
                 key: str) -> Discrepancy:
    if index is None:
        return Discrepancy(kind, delta=delta)
    payment = day_result.payments[index]
    if payment.payment_id is None:
        raise DemoStepFailed(f"payment {index + 1} planned for a {kind} discrepancy was not made")
    sale = next(op for op in operations(api_url, key, payment.payment_id) if op["operation"] == "authorize")
    return Discrepancy(kind, reference=str(sale["reference"]), delta=delta)


def _net(rail: str, path: Path, settings: Settings) -> tuple[int, dict[str, int]]:
    """Records in the file and what the rail pays per currency, read with the parser
    reconciliation uses."""
    parse = recon_rails.parser(rail, settings)
    records, net = 0, Counter[str]()
    with path.open("rb") as stream:
        for item in parse(stream, path.name):
            if isinstance(item, SettlementRecord):
                records += 1
                currency = item.settlement_currency or item.currency
                net[currency] += item.settlement_amount if item.settlement_amount is not None else item.net
    return records, dict(net)


def write_statement(files: Iterable[SettlementFile], day: dt.date, out: Path) -> tuple[Path, list[dict[str, Any]]]:
    """The bank's camt.053 for the settlement day and the days after: each rail's net
    credited (or debited) on ``day``, except the rail whose money never arrived, and a
    credit four days later that no rail announced."""
    lines: list[StatementLine] = []
    injected: list[dict[str, Any]] = []
    for f in files:
        for currency, amount in sorted(f.net.items()):
            if f.rail == STATEMENT_MISSING_RAIL:
                injected.append({"kind": "missing", "rail": f.rail, "currency": currency, "amount": amount,
                                 "outcome": "missing_in_file"})
                continue
            lines.append(StatementLine(amount, currency, day, f"{f.rail.upper()}-{day:%Y%m%d}-{currency}",
                                       f"{f.rail} settlement {day.isoformat()}"))
    currency, amount = STATEMENT_UNEXPECTED
    later = day + dt.timedelta(days=4)
    lines.append(StatementLine(amount, currency, later, f"UNKNOWN-{later:%Y%m%d}", "incoming transfer"))
    injected.append({"kind": "unexpected", "rail": "bank", "currency": currency, "amount": amount,
                     "outcome": "unexpected_in_file"})
    path = out / f"camt053-{day:%Y%m%d}.xml"
    path.write_bytes(camt053(lines, created=dt.datetime.combine(later, dt.time(18, 0))))
    return path, injected


def reconcile(api_url: str, finance_key: str, path: Path, *, kind: str, rail: str | None) -> RunResult:
    """Upload ``path``, start a live run, and wait for it to finish."""
    api = Api(api_url, finance_key)
    try:
        data = {"kind": kind} | ({"rail": rail} if rail else {})
        uploaded = api.call("POST", "/v1/reconciliation/files", data=data,
                            files={"file": (path.name, path.read_bytes())}).json()
        run = api.call("POST", "/v1/reconciliation/runs", json={"file_id": uploaded["id"]}, expect=(202,)).json()
        deadline = time.monotonic() + RUN_TIMEOUT
        while run["status"] not in ("completed", "failed"):
            if time.monotonic() > deadline:
                raise DemoStepFailed(f"reconciliation run {run['id']} of {path.name} did not finish in "
                                     f"{RUN_TIMEOUT} s", run_id=run["id"])
            time.sleep(0.1)
            run = api.get(f"/v1/reconciliation/runs/{run['id']}")
    finally:
        api.close()
    outcomes = {k: int(v) for k, v in dict(run["summary"].get("outcomes", {})).items() if v}
    error = f"[{run['error_code']}] {run['error_message']}" if run.get("error_code") else ""
    return RunResult(int(run["id"]), kind, rail or "bank", path.name, str(run["status"]), outcomes,
                     dict(run["summary"]), error)
