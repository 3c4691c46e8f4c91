"""Alipay-style wallet rail: CNY trades and cross-border forex trades, pre-authorization
with several captures, refunds, transfers to sellers, and Alipay's cross-border
settlement file; plus a simulator of Alipay's open-platform gateway.

The service reaches it through the ``settlement.rails`` entry point ``alipay``::

    rail = plugin.create_rail(config)          # see AlipayRail.from_config for the keys
    simulator = plugin.create_simulator(signing="wrong-key")  # options: see .simulator

Modules: :mod:`.codec` (amounts, Beijing time, fees), :mod:`.signing` (RSA2),
:mod:`.transport` (one signed call), :mod:`.client` (the rail), :mod:`.queries` and
:mod:`.responses` (reading answers), :mod:`.notifications`, :mod:`.files` with
:mod:`.file_format` and :mod:`.file_parser` (settlement file), :mod:`.forex` (rate
file), and the simulator (:mod:`.simulator`, :mod:`.sim_model`, :mod:`.sim_trades`,
:mod:`.sim_funds`, :mod:`.sim_delivery`).

Fees: 0.6% of CNY trades, 1.2% of cross-border trades (``codec.fee_schedule_for``;
the SPI's single ``fee_schedule`` attribute is the domestic one); refunds return no
fee. Settlement: T+1 business days, missing after two more.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from adapters.base import RailPlugin

from .client import AlipayRail
from .codec import RAIL
from .simulator import AlipaySimulator

__all__ = ["AlipayPlugin", "AlipayRail", "AlipaySimulator", "plugin"]


class AlipayPlugin:
    """Builds Alipay rails and simulators from plain configuration."""

    name = RAIL

    def create_rail(self, config: Mapping[str, str]) -> AlipayRail:
        return AlipayRail.from_config(config)

    def create_simulator(self, **options: str) -> AlipaySimulator:
        return AlipaySimulator(**options)


plugin = AlipayPlugin()

if TYPE_CHECKING:
    # mypy checks here that the plugin, its rail and its simulator satisfy the SPI.
    _satisfies_the_spi: RailPlugin = plugin
