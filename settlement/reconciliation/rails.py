"""What reconciliation needs from a rail without connecting to it: its settlement
calendar (expected settlement date, SLA) and a streaming parser of its settlement
files.

The SPI puts both on the configured client (``PaymentRail.calendar``,
``PaymentRail.parse_settlement_file``), but reading a file or recording an
expectation must not need the rail's keys and endpoints. So, in order:

* the calendar is the class attribute of the rail class the plugin's
  ``create_rail`` declares it returns (no instance is built); failing that, a client
  built from ``rails_config_file``; failing that, the SPI's default calendar;
* files of the rails shipped with the service are read by their packages' own
  parsers (``adapters.<rail>.files``), which need no configuration; any other rail's
  files through a client built from ``rails_config_file``.

``recon_sla_days`` overrides a rail's SLA.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from adapters.base import (
    FeeSchedule,
    PaymentRail,
    RailError,
    RecordError,
    SettlementCalendar,
    SettlementRecord,
)
from adapters.registry import get_rail_plugin
from settlement.config import Settings
from settlement.reconciliation.errors import UnknownRail

log = logging.getLogger(__name__)

Items = Iterator[SettlementRecord | RecordError]
#: Parse ``stream`` (a file named ``filename``) into records and errors.
Parser = Callable[[BinaryIO, str], Items]


def _mir(stream: BinaryIO, _filename: str) -> Items:
    from adapters.mir.files import parse_register

    return parse_register(stream)


def _unionpay(stream: BinaryIO, filename: str) -> Items:
    from adapters.unionpay.files import parse_zm, settlement_date_from_name

    return parse_zm(stream, settlement_date=settlement_date_from_name(filename))


def _alipay(stream: BinaryIO, _filename: str) -> Items:
    from adapters.alipay.files import parse_settlement

    return parse_settlement(stream)


#: Configuration-free parsers of the rails this service ships with.
SHIPPED_PARSERS: dict[str, Parser] = {"mir": _mir, "unionpay": _unionpay, "alipay": _alipay}

_lock = threading.Lock()
_calendars: dict[str, SettlementCalendar] = {}
_fees: dict[str, FeeSchedule | None] = {}


def _plugin(rail: str) -> Any:
    try:
        return get_rail_plugin(rail)
    except RailError as exc:
        raise UnknownRail(exc.message, rail=rail) from None


def check_rail(rail: str) -> str:
    """``rail`` if a plugin of that name is installed; ``recon_unknown_rail`` otherwise."""
    _plugin(rail)
    return rail


def _declared_rail_class(plugin: Any) -> type | None:
    """The class ``plugin.create_rail`` says it returns, resolved in the plugin's module
    (through the module's attribute lookup, so lazily exported classes load too)."""
    method = getattr(type(plugin), "create_rail", None)
    if method is None:
        return None
    declared = inspect.get_annotations(method).get("return")
    if isinstance(declared, type):
        return declared
    if not isinstance(declared, str) or not declared.isidentifier():
        return None
    module = sys.modules.get(type(plugin).__module__)
    found = getattr(module, declared, None) if module is not None else None
    return found if isinstance(found, type) else None


def _configured_client(rail: str, settings: Settings) -> PaymentRail | None:
    config = _rails_config(settings.rails_config_file).get(rail)
    if config is None:
        return None
    client: PaymentRail = _plugin(rail).create_rail(config)
    return client


@functools.lru_cache(maxsize=8)
def _rails_config(path: Path | None) -> Mapping[str, Mapping[str, str]]:
    if path is None or not path.is_file():
        return {}
    loaded = json.loads(path.read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else {}


def calendar(rail: str, settings: Settings) -> SettlementCalendar:
    """The rail's settlement calendar (with the configured SLA, if any)."""
    with _lock:
        found = _calendars.get(rail)
    if found is None:
        plugin = _plugin(rail)
        rail_class = _declared_rail_class(plugin)
        candidate = getattr(rail_class, "calendar", None) if rail_class is not None else None
        if not isinstance(candidate, SettlementCalendar):
            client = _configured_client(rail, settings)
            candidate = client.calendar if client is not None else None
        if not isinstance(candidate, SettlementCalendar):
            log.warning("rail %s exposes no settlement calendar; using T+1 business days, SLA 2", rail)
            candidate = SettlementCalendar()
        found = candidate
        with _lock:
            _calendars[rail] = found
    sla = settings.recon_sla_days.get(rail)
    return dataclasses.replace(found, sla_days=sla) if sla is not None else found


def fee_schedule(rail: str, settings: Settings) -> FeeSchedule | None:
    """The rail's fee schedule (found like its calendar), or None when it has none."""
    with _lock:
        if rail in _fees:
            return _fees[rail]
    rail_class = _declared_rail_class(_plugin(rail))
    found = getattr(rail_class, "fee_schedule", None) if rail_class is not None else None
    if not isinstance(found, FeeSchedule):
        client = _configured_client(rail, settings)
        found = client.fee_schedule if client is not None else None
    schedule = found if isinstance(found, FeeSchedule) else None
    with _lock:
        _fees[rail] = schedule
    return schedule


def parser(rail: str, settings: Settings) -> Parser:
    """A streaming parser of the rail's settlement files."""
    check_rail(rail)
    shipped = SHIPPED_PARSERS.get(rail)
    if shipped is not None:
        return shipped
    client = _configured_client(rail, settings)
    if client is None:
        raise UnknownRail(f"rail {rail!r} ships no configuration-free file parser and has no entry in "
                          "rails_config_file to build a client from", rail=rail)

    def parse(stream: BinaryIO, _filename: str) -> Items:
        return client.parse_settlement_file(stream)

    return parse
