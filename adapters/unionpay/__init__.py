"""UnionPay rail: an ACP 5.1.0-style gateway client (CNY, currencyCode 156), its
simulator, and the ZM reconciliation file.

``plugin`` is what the ``settlement.rails`` entry point ``unionpay`` names:

* ``plugin.create_rail(config)`` -> :class:`~adapters.unionpay.client.UnionPayRail`
  (configuration keys: :mod:`adapters.unionpay.config`);
* ``plugin.create_simulator(**options)`` ->
  :class:`~adapters.unionpay.simulator.UnionPaySimulator` (options and test cards in
  its docstring and :class:`~adapters.unionpay.constants.TestCards`).
"""

from __future__ import annotations

from collections.abc import Mapping

from adapters.unionpay.client import UnionPayRail
from adapters.unionpay.config import UnionPayConfig
from adapters.unionpay.constants import RAIL
from adapters.unionpay.simulator import UnionPaySimulator


class UnionPayPlugin:
    """Builds UnionPay rails and simulators from plain strings. Holds no state."""

    name = RAIL

    def create_rail(self, config: Mapping[str, str]) -> UnionPayRail:
        return UnionPayRail(UnionPayConfig.from_mapping(config))

    def create_simulator(self, **options: str) -> UnionPaySimulator:
        return UnionPaySimulator(**options)


plugin = UnionPayPlugin()

__all__ = ["UnionPayPlugin", "UnionPayRail", "UnionPaySimulator", "plugin"]
