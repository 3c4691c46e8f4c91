"""UnionPay rail: an ACP 5.1.0-style gateway client (CNY, currencyCode 156), its
simulator, and the ZM reconciliation file.

``plugin`` is what the ``settlement.rails`` entry point ``unionpay`` names:

* ``plugin.create_rail(config)`` -> :class:`~adapters.unionpay.client.UnionPayRail`
  (configuration keys: :mod:`adapters.unionpay.config`);
* ``plugin.create_simulator(**options)`` ->
  :class:`~adapters.unionpay.simulator.UnionPaySimulator` (options and test cards in
  its docstring and :class:`~adapters.unionpay.constants.TestCards`).

The client and simulator (HTTP, cryptography) load on first use, so reading ZM files
with :mod:`adapters.unionpay.files` stays light.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from adapters.unionpay.constants import RAIL

if TYPE_CHECKING:
    from adapters.unionpay.client import UnionPayRail
    from adapters.unionpay.simulator import UnionPaySimulator


class UnionPayPlugin:
    """Builds UnionPay rails and simulators from plain strings. Holds no state."""

    name = RAIL

    def create_rail(self, config: Mapping[str, str]) -> UnionPayRail:
        from adapters.unionpay.client import UnionPayRail
        from adapters.unionpay.config import UnionPayConfig

        return UnionPayRail(UnionPayConfig.from_mapping(config))

    def create_simulator(self, **options: str) -> UnionPaySimulator:
        from adapters.unionpay.simulator import UnionPaySimulator

        return UnionPaySimulator(**options)


plugin = UnionPayPlugin()


def __getattr__(name: str) -> object:
    if name == "UnionPayRail":
        from adapters.unionpay.client import UnionPayRail
        return UnionPayRail
    if name == "UnionPaySimulator":
        from adapters.unionpay.simulator import UnionPaySimulator
        return UnionPaySimulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["UnionPayPlugin", "UnionPayRail", "UnionPaySimulator", "plugin"]
