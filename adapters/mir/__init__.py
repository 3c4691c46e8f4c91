"""The Mir card rail (RUB): ISO 8583:1987 over TCP with an AES-CMAC (our convention),
a simulator of the host, and the Mir-style acquirer register.

* :mod:`adapters.mir.protocol`: wire format, identifiers, status inquiry, MAC;
* :mod:`adapters.mir.client`: :class:`MirRail`, the adapter, and its configuration;
* :mod:`adapters.mir.files`: the register's layout, streaming parser and writer;
* :mod:`adapters.mir.simulator`: the simulated host, its test cards and options.

Terms: 1.5 % merchant discount (refunds give no fee back), settlement T+1 business
day, missing after two more business days.
"""

from __future__ import annotations

from collections.abc import Mapping

from adapters.mir.client import MirRail
from adapters.mir.simulator import MirSimulator
from adapters.mir.terms import RAIL


class MirPlugin:
    """What the ``settlement.rails`` entry point ``mir`` names. Stateless: every rail
    and simulator it builds holds its own keys and endpoint."""

    name = RAIL

    def create_rail(self, config: Mapping[str, str]) -> MirRail:
        """A client configured by ``config`` (see :mod:`adapters.mir.client`)."""
        return MirRail.from_config(config)

    def create_simulator(self, **options: str) -> MirSimulator:
        """A simulated host (options in :mod:`adapters.mir.simulator`), not yet started."""
        return MirSimulator(**options)


plugin = MirPlugin()

__all__ = ["MirPlugin", "MirRail", "MirSimulator", "plugin"]
