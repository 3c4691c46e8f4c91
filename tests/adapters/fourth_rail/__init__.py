"""A fourth payment rail that exists only for the tests: a third-party plugin.

It shows what a rail package outside this repository has to provide to be found by
:class:`adapters.registry.RailRegistry` and to pass
:data:`adapters.testing.CONFORMANCE_CHECKS`: a :class:`~adapters.base.RailPlugin`
named by an entry point in the ``settlement.rails`` group, an adapter
(:mod:`.rail`) and a simulator (:mod:`.simulator`) that talk over a real loopback
socket with HMAC-signed JSON (:mod:`.protocol`).

``NOT_A_PLUGIN`` is here so the registry's refusal of a wrong entry point can be
tested against a real import.
"""

from __future__ import annotations

from collections.abc import Mapping

from tests.adapters.fourth_rail.protocol import NAME
from tests.adapters.fourth_rail.rail import FourthRail
from tests.adapters.fourth_rail.simulator import FourthSimulator


class FourthRailPlugin:
    """Satisfies :class:`adapters.base.RailPlugin`."""

    name = NAME

    def create_rail(self, config: Mapping[str, str]) -> FourthRail:
        return FourthRail(config)

    def create_simulator(self, **options: str) -> FourthSimulator:
        return FourthSimulator(**options)


plugin = FourthRailPlugin()

#: Has a name and nothing else: an entry point naming it loads a non-plugin.
NOT_A_PLUGIN = type("NotAPlugin", (), {"name": NAME})()

__all__ = ["NOT_A_PLUGIN", "FourthRail", "FourthRailPlugin", "FourthSimulator", "plugin"]
