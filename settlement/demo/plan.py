"""The marketplace day the demo plays, decided up front from ``--seed``: the sellers,
every payment (rail, currency, amount, seller, what happens to it), and the
discrepancies each rail's settlement file and the bank statement will carry.

Everything here is pure: the same seed and count give the same day. Every rail takes
every scenario (Alipay's pre-authorizations too: each capture is a trade of its own,
settled on its own line and paired with its own expectation by its ``trade_no``),
except that cross-border wallet payments are sales. Which payment a discrepancy lands
on is picked among the plain sales (captured once, never refunded), so each
discrepancy has exactly one outcome in reconciliation:

=================  ============================================  ==================
discrepancy        what the file says                            outcome
=================  ============================================  ==================
missing            the sale is left out                          missing in file
duplicate          the sale's line appears twice                 duplicate
fee_differs        the rail took more fee than its schedule      fee variance
amount_differs     the rail paid a different gross               amount mismatch
fx_rate_differs    the rail converted at another rate            FX variance
refund             a refund nobody asked for                     unexpected in file
chargeback         the buyer's bank took the money back          unexpected in file
unknown            a payment the service never sent              unexpected in file
=================  ============================================  ==================

The bank statement confirms each rail's net settlement, except one it never
received (missing) and one credit nobody expected (unexpected).
"""

from __future__ import annotations

import enum
import random
from collections import Counter
from dataclasses import dataclass

from adapters.base import DiscrepancyKind
from settlement.money import exponent

RAILS = ("mir", "unionpay", "alipay")
#: The currency each rail charges by default.
CURRENCY = {"mir": "RUB", "unionpay": "CNY", "alipay": "CNY"}
#: Whole units of a payment, by currency: furniture and electronics in roubles, tea and
#: clothes in yuan.
RANGE = {"RUB": (400, 25_000), "CNY": (30, 2_000)}
#: Minor units a payment may end in: none the simulators treat specially (Mir declines
#: kopecks 51 and 91 and never answers 68; UnionPay answers 03, 05, 06 and 33 with errors).
SAFE_MINOR = (0, 10, 20, 25, 40, 50, 60, 75, 80, 90, 95, 99)
#: Buyers' payment methods the simulators approve, and one card Mir declines.
METHODS = {"mir": {"type": "card", "pan": "2200000000000004", "expiry": "3112"},
           "unionpay": {"type": "card", "pan": "6216261000000000018", "expiry": "3012"},
           "alipay": {"type": "wallet", "buyer_id": "2088102100000001"}}
DECLINED_CARD = {"type": "card", "pan": "2204000000000059", "expiry": "3112"}
#: Fewest payments that still leave every rail enough plain sales for its discrepancies.
MIN_PAYMENTS = 30


class Scenario(enum.StrEnum):
    SALE = "sale"                          # authorized and captured at once
    CAPTURE = "capture"                    # authorized, then captured in full
    PARTIAL_CAPTURE = "partial_capture"    # authorized, part captured, the rest released
    TWO_CAPTURES = "two_captures"          # authorized, captured in two parts
    VOID = "void"                          # authorized, then released
    PARTIAL_REFUND = "partial_refund"      # sold, then part refunded
    REFUND = "refund"                      # sold, then refunded in full
    DECLINED = "declined"                  # the card is declined


#: Authorized first, captured or released later.
MANUAL = frozenset({Scenario.CAPTURE, Scenario.PARTIAL_CAPTURE, Scenario.TWO_CAPTURES, Scenario.VOID})
#: (scenario, weight): most payments are plain sales.
MIX = ((Scenario.SALE, 58), (Scenario.CAPTURE, 10), (Scenario.PARTIAL_CAPTURE, 8), (Scenario.TWO_CAPTURES, 5),
       (Scenario.VOID, 6), (Scenario.PARTIAL_REFUND, 7), (Scenario.REFUND, 4), (Scenario.DECLINED, 2))


@dataclass(frozen=True)
class Seller:
    key: str
    name: str
    currency: str
    payout_rail: str | None = None
    payout_destination: str | None = None


SELLERS = (
    Seller("moscow-furniture", "Moscow Furniture Works", "RUB"),
    Seller("kazan-electronics", "Kazan Electronics", "RUB"),
    Seller("shanghai-tea", "Shanghai Tea Co", "CNY", "unionpay", "6216261000000000018"),
    Seller("hangzhou-silk", "Hangzhou Silk House", "CNY", "alipay", "2088102100000001"),
)
#: Who is paid out at the end of the day, and which share of what it is owed.
PAYOUT_SELLER = "shanghai-tea"
PAYOUT_SHARE = (1, 2)


@dataclass(frozen=True)
class PlannedPayment:
    index: int
    rail: str
    currency: str
    amount: int            # minor units of ``currency``
    seller: str            # Seller.key
    scenario: Scenario

    @property
    def crosses_currency(self) -> bool:
        return self.currency != seller_by_key(self.seller).currency


@dataclass(frozen=True)
class PlannedDiscrepancy:
    rail: str
    kind: DiscrepancyKind
    payment: int | None    # PlannedPayment.index it lands on; None for an invented record
    delta: int = 0         # minor units, for fee and amount differences

    @property
    def outcome(self) -> str:
        return OUTCOME[self.kind]


OUTCOME = {DiscrepancyKind.MISSING: "missing_in_file", DiscrepancyKind.DUPLICATE: "duplicate",
           DiscrepancyKind.FEE_DIFFERS: "fee_variance", DiscrepancyKind.AMOUNT_DIFFERS: "amount_mismatch",
           DiscrepancyKind.FX_RATE_DIFFERS: "fx_variance", DiscrepancyKind.REFUND: "unexpected_in_file",
           DiscrepancyKind.CHARGEBACK: "unexpected_in_file", DiscrepancyKind.UNKNOWN: "unexpected_in_file"}
#: What each rail's file gets wrong. FX_RATE_DIFFERS needs a sale the rail converted:
#: Alipay's cross-border sales in roubles.
INJECTED: dict[str, tuple[DiscrepancyKind, ...]] = {
    "mir": (DiscrepancyKind.MISSING, DiscrepancyKind.AMOUNT_DIFFERS, DiscrepancyKind.DUPLICATE,
            DiscrepancyKind.FEE_DIFFERS),
    "unionpay": (DiscrepancyKind.FEE_DIFFERS, DiscrepancyKind.CHARGEBACK, DiscrepancyKind.UNKNOWN,
                 DiscrepancyKind.MISSING),
    "alipay": (DiscrepancyKind.FX_RATE_DIFFERS, DiscrepancyKind.AMOUNT_DIFFERS, DiscrepancyKind.REFUND,
               DiscrepancyKind.DUPLICATE),
}
#: The statement: the rail whose net settlement never reached the bank, and a credit
#: nobody expected.
STATEMENT_MISSING_RAIL = "alipay"
STATEMENT_UNEXPECTED = ("RUB", 1_250_000)


@dataclass(frozen=True)
class Plan:
    seed: int
    payments: tuple[PlannedPayment, ...]
    discrepancies: tuple[PlannedDiscrepancy, ...]

    def expected_outcomes(self, rail: str) -> Counter[str]:
        """Outcomes other than matched that the rail's file must produce."""
        return Counter(d.outcome for d in self.discrepancies if d.rail == rail)

    def by_index(self, index: int) -> PlannedPayment:
        return self.payments[index]


def seller_by_key(key: str) -> Seller:
    return next(s for s in SELLERS if s.key == key)


def make_plan(count: int, seed: int) -> Plan:
    """The day for ``count`` payments (at least :data:`MIN_PAYMENTS`) and ``seed``."""
    if count < MIN_PAYMENTS:
        raise ValueError(f"the demo needs at least {MIN_PAYMENTS} payments")
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not secrets
    # Enough plain sales on every rail for its discrepancies (two to spare), and on Alipay
    # a rouble sale the rail converts; the rest as they come; then all in a random order.
    drafts: list[PlannedPayment] = []
    for rail, kinds in INJECTED.items():
        for _ in range(len(kinds) + 2):
            drafts.append(PlannedPayment(0, rail, CURRENCY[rail], _amount(rng, CURRENCY[rail]),
                                         rng.choice([s.key for s in SELLERS]), Scenario.SALE))
    drafts.append(PlannedPayment(0, "alipay", "RUB", _amount(rng, "RUB"), "hangzhou-silk", Scenario.SALE))
    drafts += [_payment(rng) for _ in range(count - len(drafts))]
    rng.shuffle(drafts)
    payments = [PlannedPayment(i, p.rail, p.currency, p.amount, p.seller, p.scenario) for i, p in enumerate(drafts)]
    return Plan(seed, tuple(payments), tuple(_discrepancies(rng, payments)))


def _payment(rng: random.Random) -> PlannedPayment:
    rail = rng.choices(RAILS, weights=(40, 30, 30))[0]
    currency = CURRENCY[rail]
    if rail == "alipay" and rng.random() < 0.2:
        currency = "RUB"        # a cross-border sale: Alipay charges roubles, settles yuan
    same = [s.key for s in SELLERS if s.currency == currency]
    other = [s.key for s in SELLERS if s.currency != currency]
    # About a third of the sales cross currencies: the ledger converts at an FX quote.
    seller = rng.choice(other if rng.random() < 0.33 else same)
    scenario = rng.choices([s for s, _ in MIX], weights=[w for _, w in MIX])[0]
    if currency != CURRENCY[rail]:
        scenario = Scenario.SALE    # cross-border wallet payments are sales
    return PlannedPayment(0, rail, currency, _amount(rng, currency), seller, scenario)


def _amount(rng: random.Random, currency: str) -> int:
    low, high = RANGE[currency]
    minor: int = rng.randrange(low, high) * 10 ** exponent(currency) + rng.choice(SAFE_MINOR)
    return minor


def _discrepancies(rng: random.Random, payments: list[PlannedPayment]) -> list[PlannedDiscrepancy]:
    planned: list[PlannedDiscrepancy] = []
    for rail, kinds in INJECTED.items():
        sales = sorted((p for p in payments if p.rail == rail and p.scenario is Scenario.SALE), key=lambda p: p.index)
        converted = [p for p in sales if p.currency != CURRENCY[rail]]
        plain = [p for p in sales if p.currency == CURRENCY[rail]]
        rng.shuffle(plain)
        for kind in kinds:
            if kind is DiscrepancyKind.UNKNOWN:
                planned.append(PlannedDiscrepancy(rail, kind, None, rng.randrange(50, 900) * 100))
                continue
            target = converted.pop(0) if kind is DiscrepancyKind.FX_RATE_DIFFERS else plain.pop()
            delta = 0
            if kind is DiscrepancyKind.FEE_DIFFERS:
                delta = rng.randrange(100, 900)
            elif kind is DiscrepancyKind.AMOUNT_DIFFERS:
                delta = -rng.randrange(1_000, 20_000)
            planned.append(PlannedDiscrepancy(rail, kind, target.index, delta))
    return planned
