"""Playing the day over HTTP, as the marketplace and finance would: API keys, FX rates,
sellers, every planned payment with its captures, voids and refunds, and a payout.

Every call goes through the served API (httpx over a real socket) with an
``Idempotency-Key`` derived from the seed and the payment's index, so each request
is one the service can recognise if it were retried.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import httpx

from settlement.auth.service import create_key
from settlement.db import SessionFactory, unit_of_work
from settlement.demo.errors import DemoStepFailed
from settlement.demo.plan import (
    MANUAL,
    METHODS,
    PAYOUT_SELLER,
    PAYOUT_SHARE,
    SELLERS,
    Plan,
    PlannedPayment,
    Scenario,
)
from settlement.demo.progress import Reporter
from settlement.money import exponent, format_minor, to_minor

#: A method each rail's simulator declines.
DECLINING = {"mir": {"type": "card", "pan": "2204000000000059", "expiry": "3112"},
             "unionpay": {"type": "card", "pan": "6216261000000000646", "expiry": "3012"},
             "alipay": {"type": "wallet", "buyer_id": "2088102100000002"}}
#: Concurrent checkout requests (SQLite takes one writer at a time).
CONCURRENCY = {"postgresql": 1, "sqlite": 1}


@dataclass
class Keys:
    """The demo's API keys (shown with --keep-running): the marketplace's checkout key,
    two finance users (a write-off above the threshold needs a second one), an auditor."""

    checkout: str
    finance: str
    finance_second: str
    auditor: str


@dataclass
class PaymentResult:
    index: int
    payment_id: int | None
    state: str
    requests: int


@dataclass
class DayResult:
    sellers: dict[str, int] = field(default_factory=dict)
    payments: dict[int, PaymentResult] = field(default_factory=dict)
    payout: dict[str, Any] = field(default_factory=dict)
    rates: list[str] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0  # float-ok: elapsed time


def create_keys(factory: SessionFactory) -> Keys:
    """Keys made the way ``settlement keys create`` makes them."""
    with unit_of_work(factory) as session:
        made = {name: create_key(session, f"demo {name}", scopes)[0] for name, scopes in (
            ("checkout", ["checkout"]), ("finance", ["finance"]), ("finance-second", ["finance"]),
            ("auditor", ["auditor"]))}
    return Keys(made["checkout"], made["finance"], made["finance-second"], made["auditor"])


class Api:
    """An httpx client of the served API with one key; refuses unexpected answers."""

    def __init__(self, base_url: str, key: str) -> None:
        self.client = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=120,
                                   limits=httpx.Limits(max_connections=8, max_keepalive_connections=8))

    def close(self) -> None:
        self.client.close()

    def call(self, method: str, path: str, *, json: Any = None, key: str | None = None,
             expect: tuple[int, ...] = (200, 201, 202), **kwargs: Any) -> httpx.Response:
        headers = {"Idempotency-Key": key} if key else {}
        response = self.client.request(method, path, json=json, headers=headers, **kwargs)
        if response.status_code not in expect:
            raise DemoStepFailed(f"{method} {path} answered {response.status_code}: {_problem(response)}",
                                 status=response.status_code)
        return response

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params or None).json()


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    return f"{body.get('code', '')} {body.get('detail', body)}" if isinstance(body, dict) else str(body)[:300]


def play(api_url: str, keys: Keys, plan: Plan, reporter: Reporter, *, dialect: str) -> DayResult:
    """Rates, sellers, payments, and a payout; returns what happened."""
    started = time.monotonic()
    result = DayResult()
    checkout, finance = Api(api_url, keys.checkout), Api(api_url, keys.finance)
    try:
        reporter.begin("Loading FX rates from the Alipay simulator")
        rates = finance.call("POST", "/v1/fx/rates/refresh").json()["data"]
        result.rates = [f"{r['base_currency']}/{r['quote_currency']} {r['rate']}" for r in rates]
        reporter.end(", ".join(result.rates[:3]))
        reporter.begin("Registering sellers", total=len(SELLERS))
        for seller in SELLERS:
            body: dict[str, Any] = {"name": seller.name, "settlement_currency": seller.currency,
                                    "external_id": seller.key, "commission_rate": "0.05"}
            if seller.payout_rail:
                body |= {"payout_rail": seller.payout_rail, "payout_destination": seller.payout_destination,
                         "payout_beneficiary": seller.name}
            made = checkout.call("POST", "/v1/merchants", json=body, key=f"demo-{plan.seed}-seller-{seller.key}")
            result.sellers[seller.key] = int(made.json()["id"])
            reporter.advance()
        reporter.end(", ".join(f"{s.name} ({s.currency})" for s in SELLERS))
        reporter.begin("Taking payments over Mir, UnionPay and Alipay", total=len(plan.payments))
        with ThreadPoolExecutor(max_workers=CONCURRENCY.get(dialect, 1)) as pool:
            futures = [pool.submit(_play_payment, checkout, plan.seed, p, result.sellers) for p in plan.payments]
            for future in as_completed(futures):
                done = future.result()
                result.payments[done.index] = done
                reporter.advance()
        result.requests = sum(p.requests for p in result.payments.values())
        states: dict[str, int] = {}
        for p in result.payments.values():
            states[p.state] = states.get(p.state, 0) + 1
        reporter.end(", ".join(f"{n} {s}" for s, n in sorted(states.items())))
        reporter.begin("Paying a seller out")
        result.payout = _payout(checkout, plan.seed, result.sellers[PAYOUT_SELLER])
        reporter.end(f"{result.payout['amount']} {result.payout['currency']} to {SELLERS[2].name}, "
                     f"{result.payout['state']}")
    finally:
        checkout.close()
        finance.close()
    result.seconds = time.monotonic() - started
    return result


def _play_payment(api: Api, seed: int, p: PlannedPayment, sellers: dict[str, int]) -> PaymentResult:
    """Create the payment, then capture, void or refund it as planned."""
    tag = f"demo-{seed}-{p.index}"
    method = DECLINING[p.rail] if p.scenario is Scenario.DECLINED else METHODS[p.rail]
    body = {"amount": format_minor(p.amount, p.currency), "currency": p.currency, "merchant_id": sellers[p.seller],
            "rail": p.rail, "payment_method": method, "description": f"order {p.index + 1}",
            "buyer_reference": f"buyer-{p.index + 1}",
            "capture_method": "manual" if p.scenario in MANUAL else "automatic"}
    created = api.call("POST", "/v1/payments", json=body, key=f"{tag}-create", expect=(201, 202, 402))
    if created.status_code == 402:
        return PaymentResult(p.index, None, "declined", 1)
    payment = _settled(api, created.json())
    requests = 1
    pid = int(payment["id"])
    unit = 10 ** exponent(p.currency)

    def post(path: str, suffix: str, json: dict[str, Any]) -> None:
        nonlocal payment, requests
        api.call("POST", f"/v1/payments/{pid}{path}", json=json, key=f"{tag}-{suffix}")
        requests += 1
        payment = _settled(api, api.get(f"/v1/payments/{pid}"))

    part = max(unit, (p.amount * 7 // 10) // unit * unit)   # whole units, about 70 %
    match p.scenario:
        case Scenario.CAPTURE:
            post("/capture", "capture", {"final": True})
        case Scenario.PARTIAL_CAPTURE:
            post("/capture", "capture", {"amount": format_minor(part, p.currency), "final": True})
        case Scenario.TWO_CAPTURES:
            post("/capture", "capture-1", {"amount": format_minor(part, p.currency), "final": False})
            post("/capture", "capture-2", {"final": True})
        case Scenario.VOID:
            post("/void", "void", {"reason": "the buyer cancelled the order"})
        case Scenario.PARTIAL_REFUND:
            post("/refunds", "refund", {"amount": format_minor(part, p.currency), "reason": "an item returned"})
        case Scenario.REFUND:
            post("/refunds", "refund", {"reason": "the order was returned"})
        case _:
            pass
    return PaymentResult(p.index, pid, str(payment["state"]), requests)


def _settled(api: Api, payment: dict[str, Any], timeout: float = 20.0) -> dict[str, Any]:  # float-ok: seconds
    """The payment once no rail operation is in flight (the rail answered later)."""
    deadline = time.monotonic() + timeout
    while payment.get("operation_in_progress") is not None or payment.get("state") in ("authorizing", "unknown"):
        if time.monotonic() > deadline:
            return payment
        time.sleep(0.1)
        payment = api.get(f"/v1/payments/{payment['id']}")
    return payment


def _payout(api: Api, seed: int, merchant_id: int) -> dict[str, Any]:
    balance = api.get(f"/v1/merchants/{merchant_id}/balance")
    currency = str(balance["currency"])
    available = to_minor(balance["available"], currency)
    unit = 10 ** exponent(currency)
    amount = available * PAYOUT_SHARE[0] // PAYOUT_SHARE[1] // unit * unit
    if amount <= 0:
        return {"amount": "0", "currency": currency, "state": "skipped: nothing available"}
    made = api.call("POST", "/v1/payouts", json={"merchant_id": merchant_id, "amount": format_minor(amount, currency)},
                    key=f"demo-{seed}-payout").json()
    made = _wait(lambda: api.get(f"/v1/payouts/{made['id']}"), lambda p: p["state"] not in ("pending", "processing"),
                 made)
    return {"id": made["id"], "amount": made["amount"], "currency": made["currency"], "state": made["state"],
            "reference": made["reference"]}


def _wait(fetch: Callable[[], Any], done: Callable[[Any], bool], first: Any, timeout: float = 20.0) -> Any:  # float-ok
    value = first
    deadline = time.monotonic() + timeout
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.1)
        value = fetch()
    return value


def operations(api_url: str, key: str, payment_id: int) -> list[dict[str, Any]]:
    """The rail operations of a payment (our references), as the API lists them."""
    api = Api(api_url, key)
    try:
        return list(api.get(f"/v1/payments/{payment_id}/operations")["data"])
    finally:
        api.close()
