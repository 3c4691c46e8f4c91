"""Fixtures: a running Mir simulator and a rail configured for it, over real sockets."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from adapters.base import AuthorizeRequest, PaymentMethod
from adapters.mir import MirRail, MirSimulator, plugin
from adapters.testing import new_reference

RUB = "RUB"


@pytest.fixture
def make_sim() -> Iterator[Callable[..., MirSimulator]]:
    """Start simulators with the given options; every one is stopped afterwards."""
    started: list[MirSimulator] = []

    def make(**options: str) -> MirSimulator:
        simulator = plugin.create_simulator(**options)
        simulator.start()
        started.append(simulator)
        return simulator

    yield make
    for simulator in started:
        simulator.stop()


@pytest.fixture
def sim(make_sim: Callable[..., MirSimulator]) -> MirSimulator:
    return make_sim()


def port_of(simulator: MirSimulator) -> int:
    return int(simulator.adapter_config()["port"])


def rail_for(simulator: MirSimulator, **overrides: str) -> MirRail:
    return plugin.create_rail({**simulator.adapter_config(), **overrides})


@pytest.fixture
def rail(sim: MirSimulator) -> MirRail:
    return rail_for(sim)


def authorize_request(method: PaymentMethod, amount: int, *, capture: bool = False,
                      reference: str | None = None) -> AuthorizeRequest:
    return AuthorizeRequest(reference=reference or new_reference("mir"), amount=amount, currency=RUB,
                            method=method, capture=capture)
