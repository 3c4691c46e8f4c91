"""The accounts reconciliation books to.

The payments chart (:mod:`settlement.payments.accounts`) owns receivables, payouts in
flight, bank clearing, rail fees and FX; reconciliation adds three of its own:

================================  =======  =============================================
``bank:account:{CUR}``            asset    money the bank statement shows on our account
``recon:{rail}:variance:{CUR}``   expense  differences accepted within tolerance or by a
                                           manual match (a rail paying more is a credit)
``recon:writeoff:{CUR}``          expense  what finance wrote off
================================  =======  =============================================
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from settlement.ledger import AccountSpec, AccountType, Ledger
from settlement.ledger.errors import AccountNotFound
from settlement.payments import accounts as chart

receivable = chart.receivable
payouts_in_flight = chart.payouts_in_flight
fees = chart.fees
bank_clearing = chart.bank_clearing
fx_gain_loss = chart.fx_gain_loss
fx_liquidity = chart.fx_liquidity


def bank_account(currency: str) -> str:
    return f"bank:account:{currency}"


def variance(rail: str, currency: str) -> str:
    return f"recon:{rail}:variance:{currency}"


def writeoff(currency: str) -> str:
    return f"recon:writeoff:{currency}"


def spec(code: str) -> AccountSpec:
    """The spec of a reconciliation account, or of any account of the payments chart."""
    parts = code.split(":")
    currency = parts[-1]
    if code == bank_account(currency):
        return AccountSpec(code, currency, AccountType.ASSET)
    if parts[0] == "recon" and (code == writeoff(currency) or (len(parts) == 4 and parts[2] == "variance")):
        return AccountSpec(code, currency, AccountType.EXPENSE)
    return chart.spec(code)


def ensure(session: Session, codes: Iterable[str]) -> None:
    """Create the accounts of ``codes`` that do not exist yet. An account the payments
    service created first is left as it is."""
    ledger = Ledger(session)
    mine = [code for code in dict.fromkeys(codes) if code.startswith(("recon:", "bank:account:"))]
    chart.ensure(session, [code for code in dict.fromkeys(codes) if code not in mine])
    for code in mine:
        try:
            ledger.get_account(code)
        except AccountNotFound:
            ledger.create_account(spec(code))
