"""Rail simulators on real loopback sockets, the rails configured against them, and
factories for payments tests. Imported by the conftests that need them."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.registry import get_rail_plugin
from settlement.db import SessionFactory, unit_of_work
from settlement.fx import service as fx
from settlement.fx.sources import RateQuote
from settlement.payments.rails import Rails, use_rails
from settlement.payments.service import merchants
from settlement.payments.service.flows import Context
from settlement.payments.service.payments import PaymentTerms
from tests.conftest import Database

RAILS = ("mir", "unionpay", "alipay")
#: CNY per unit, as the Alipay simulator publishes them.
RUB_CNY = Decimal("0.0785")


@pytest.fixture(scope="session")
def simulators() -> Iterator[dict[str, Any]]:
    """One simulator per rail for the whole test session (every operation uses a
    fresh random reference, so tests never collide in a simulator's book)."""
    started: dict[str, Any] = {}
    try:
        for name in RAILS:
            options = {"notify_attempts": "1"} if name == "unionpay" else {}
            simulator = get_rail_plugin(name).create_simulator(**options)
            simulator.start()
            started[name] = simulator
        yield started
    finally:
        for simulator in started.values():
            simulator.stop()


@pytest.fixture(scope="session")
def rails_config_file(simulators: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rails") / "rails.json"
    path.write_text(json.dumps({name: sim.adapter_config() for name, sim in simulators.items()}))
    return path


@pytest.fixture(scope="session")
def rails(rails_config_file: Path) -> Iterator[Rails]:
    found = Rails(json.loads(rails_config_file.read_text()))
    use_rails(found)
    yield found
    use_rails(None)
    found.close()


@pytest.fixture
def ctx(pg_database: Database, rails: Rails) -> Context:
    from settlement.tasks.base import use_session_factory

    use_session_factory(pg_database.factory)
    return Context(pg_database.factory, rails, PaymentTerms(janitor_grace_seconds=0))


def load_rates(factory: SessionFactory, rates: dict[str, Decimal] | None = None) -> None:
    """A rate snapshot: RUB/CNY and USD/CNY by default."""
    now = dt.datetime.now(dt.UTC)
    wanted = rates or {"RUB/CNY": RUB_CNY, "USD/CNY": Decimal("7.1234")}
    with unit_of_work(factory) as session:
        fx.store_snapshot(session, "test", [RateQuote(pair[:3], pair[4:], rate, now) for pair, rate in wanted.items()])


def make_merchant(factory: SessionFactory, currency: str = "RUB", commission: str = "0.05", **extra: Any) -> int:
    with unit_of_work(factory) as session:
        merchant = merchants.create_merchant(session, merchants.MerchantSpec(
            name=f"seller {currency}", settlement_currency=currency, commission_rate=Decimal(commission), **extra))
        return merchant.id
