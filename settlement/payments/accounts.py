"""The chart of accounts of payments, and the booking rules. Reconciliation books
settlements against the same accounts.

=================================  =========  ==================================================
account                            type       meaning
=================================  =========  ==================================================
``rail:{rail}:receivable:{CUR}``   asset      what a rail owes us for captured payments
                                              (reconciliation later debits ``bank:clearing``
                                              and credits this when the rail pays)
``payments:clearing:{CUR}``        liability  buyer funds between authorization/capture and
                                              the split; no overdraft
``merchant:{id}:payable:{CUR}``    liability  what we owe a seller, in its settlement
                                              currency; no overdraft
``marketplace:commission:{CUR}``   income     the marketplace's commission
``fx:liquidity:{CUR}``             equity     the FX position: one per currency; a
                                              conversion credits the currency bought from
                                              the buyer and debits the currency paid out
``fx:income:{CUR}``                income     the FX spread
``fx:gain_loss:{CUR}``             income     difference between the quoted rate and the
                                              rail's settlement rate (reconciliation)
``rail:{rail}:fees:{CUR}``         expense    the rail's fees (reconciliation)
``bank:clearing:{CUR}``            asset      money on its way into our bank account
``rail:{rail}:payouts:{CUR}``      liability  payouts sent over a rail and not yet seen
                                              leaving the bank
``payments:refunds:{CUR}``         liability  the sellers' share of refunds in flight
=================================  =========  ==================================================

Booking rules (amounts in minor units; every entry's idempotency key is derived from
the attempt or payout id, so writing it twice, by a retry or by the janitor, books it
once):

* **authorize**: hold ``A``: debit ``rail:R:receivable:C``, credit ``payments:clearing:C``
  (pending), expiring with the authorization.
* **capture** ``K``: post ``K`` of the hold (the rest stays held unless the capture is
  final), then the **split** entry: debit ``payments:clearing:C`` ``K``; credit
  ``marketplace:commission:C`` ``floor(K x commission_rate)``; the rest (the seller's
  share, which takes the rounding remainder) is credited to the seller's payable,
  or, when the seller settles in currency ``S``, converted at the payment's quote
  (:mod:`settlement.fx.conversion`: credit ``fx:liquidity:C``, debit
  ``fx:liquidity:S`` at the mid rate, credit the payable at the client rate, credit
  ``fx:income:S`` the spread). A sale (automatic capture) books the capture entry
  (debit receivable, credit clearing) and the split in one batch, without a hold.
* **void**: void the hold (what remains authorized).
* **refund** ``F`` (never more than captured and not yet refunded): each refund gives
  back the same share ``F / (captured - refunded)`` of what is still unrefunded of
  each part of the split, rounded down: the commission; the seller's share in the
  settlement currency; the FX spread. The seller's share in the payment currency
  takes the remainder, and the last refund gives back exactly what is left, so a full
  refund reverses the split to the minor unit. The conversion is reversed at the
  payment's own rate: the seller bears no FX movement, the FX position does. The
  seller's share is first held on its payable (debit payable, credit
  ``payments:refunds:S``, pending) so a payout cannot spend it meanwhile; when the
  rail confirms, the hold is posted and the refund entry credits
  ``rail:R:receivable:C`` ``F`` and debits commission, ``payments:refunds:S`` and the
  FX accounts; a refund the rail refuses voids the hold.
* **payout** ``P``: hold on the seller's payable (debit payable, credit
  ``rail:R:payouts:S``), posted when the rail confirms, voided when it refuses.

Accounts are created on demand, the first time a payment or merchant needs them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from sqlalchemy import event
from sqlalchemy.orm import Session

from settlement.fx.conversion import income_code, liquidity_code
from settlement.ledger import AccountSpec, AccountType, Ledger


def receivable(rail: str, currency: str) -> str:
    return f"rail:{rail}:receivable:{currency}"


def clearing(currency: str) -> str:
    return f"payments:clearing:{currency}"


def payable(merchant_id: int, currency: str) -> str:
    return f"merchant:{merchant_id}:payable:{currency}"


def commission(currency: str) -> str:
    return f"marketplace:commission:{currency}"


def refunds_in_flight(currency: str) -> str:
    return f"payments:refunds:{currency}"


def payouts_in_flight(rail: str, currency: str) -> str:
    return f"rail:{rail}:payouts:{currency}"


def fees(rail: str, currency: str) -> str:
    return f"rail:{rail}:fees:{currency}"


def bank_clearing(currency: str) -> str:
    return f"bank:clearing:{currency}"


def fx_gain_loss(currency: str) -> str:
    return f"fx:gain_loss:{currency}"


fx_liquidity = liquidity_code
fx_income = income_code


def spec(code: str) -> AccountSpec:
    """The account spec of any code of this chart (type and limits follow the code)."""
    parts = code.split(":")
    currency = parts[-1]
    kind = ":".join(p for i, p in enumerate(parts[:-1]) if not (parts[0] in ("merchant", "rail") and i == 1))
    types = {
        "rail:receivable": AccountType.ASSET, "payments:clearing": AccountType.LIABILITY,
        "merchant:payable": AccountType.LIABILITY, "marketplace:commission": AccountType.INCOME,
        "fx:liquidity": AccountType.EQUITY, "fx:income": AccountType.INCOME, "fx:gain_loss": AccountType.INCOME,
        "rail:fees": AccountType.EXPENSE, "bank:clearing": AccountType.ASSET,
        "rail:payouts": AccountType.LIABILITY, "payments:refunds": AccountType.LIABILITY,
    }
    if kind not in types:
        raise ValueError(f"{code!r} is not an account of the payments chart")
    no_overdraft = kind in ("payments:clearing", "merchant:payable", "payments:refunds")
    return AccountSpec(code, currency, types[kind], debits_must_not_exceed_credits=no_overdraft)


class _KnownAccounts:
    """Account codes known to exist, per database. Accounts are never deleted and
    their identity never changes, so once an account's creation has committed it
    need not be looked up again in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[str, set[str]] = {}

    def missing(self, database: str, codes: Iterable[str]) -> list[str]:
        with self._lock:
            known = self._known.get(database, set())
            return [code for code in codes if code not in known]

    def add(self, database: str, codes: Iterable[str]) -> None:
        with self._lock:
            self._known.setdefault(database, set()).update(codes)


_known = _KnownAccounts()
_PENDING = "settlement.payments.accounts"


def ensure(session: Session, codes: Iterable[str]) -> None:
    """Create the accounts of ``codes`` that do not exist yet (in this transaction)."""
    database = session.get_bind().engine.url.render_as_string(hide_password=True)
    missing = _known.missing(database, dict.fromkeys(codes))
    if not missing:
        return
    ledger = Ledger(session)
    for code in missing:
        ledger.create_account(spec(code))
    pending: set[str] = session.info.setdefault(_PENDING, set())
    if not pending and not session.info.get(_PENDING + ".hooked"):
        session.info[_PENDING + ".hooked"] = True

        @event.listens_for(session, "after_commit")
        def _remember(committed: Session) -> None:
            _known.add(database, committed.info.pop(_PENDING, set()))

        @event.listens_for(session, "after_soft_rollback")
        def _forget(rolled_back: Session, _previous: object) -> None:
            rolled_back.info.pop(_PENDING, None)

    pending.update(missing)
