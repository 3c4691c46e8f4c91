"""A stand-in Mir host: ISO 8583 over TCP on the loopback interface, answering and
MACing as :mod:`adapters.mir.protocol` describes, keeping a book of what it captured
and refunded, and writing settlement files.

NSPK's clearing file layouts are not public, so the settlement file is a Mir-style
acquirer register, in the shape of the operation registers Russian acquiring banks
send merchants (:mod:`adapters.mir.files`): semicolon-separated, a header, columns
``RECORD_TYPE``, ``RRN``, ``ORIGINAL_RRN``, ``AUTH_CODE``, ``MASKED_PAN``,
``AMOUNT`` (kopecks), ``CURRENCY`` (643), ``TRANSACTION_DATE``,
``SETTLEMENT_DATE``, ``FEE``, ``NET`` and ``REFERENCE`` (ours), and a ``TOTAL``
trailer. Each capture, sale and refund is one line; fees follow the 1.5 % schedule.

Discrepancies the register can carry: MISSING, DUPLICATE, LATE, FEE_DIFFERS,
AMOUNT_DIFFERS, REFUND, CHARGEBACK (``RECORD_TYPE`` says which) and UNKNOWN. It
cannot carry FX_RATE_DIFFERS: Mir settles in RUB only, so the register has no rate
column. Asked for by explicit list, that kind is refused with
:class:`~adapters.simulation.DiscrepancyNotCarried` (see :data:`NOT_CARRIED`); a
seeded run never picks it.

Test cards (any other Luhn-valid PAN of 16-19 digits in BIN 2200-2204 is approved;
a PAN outside that range or failing the Luhn check answers ``14``):

=====================  ==========================================
``2200000000000004``   approved (what :meth:`approving_method` returns)
``2204000000000059``   ``05`` do not honour (:meth:`declining_method`)
``2204000000000547``   ``54`` expired card
``2204000000000430``   ``43`` stolen card, pick up
``2204000000000620``   ``62`` restricted card
=====================  ==========================================

An expiry (field 14, ``YYMM``) before the current month answers ``54`` for any card.

Test amounts, by their last two digits in kopecks (checked after the card):

==========  ===================================================================
``..51``    ``51`` insufficient funds
``..91``    ``91`` issuer inoperative; not remembered, so a retry is processed again
``..68``    processed (approved if the card is), but the host never answers: the
            client times out, and a retry or inquiry then gets the outcome
==========  ===================================================================

Amounts of 1,000,000.00 RUB and above answer ``61``.

Options of :class:`MirSimulator` (strings, as ``create_simulator(**options)`` passes
them):

* ``port``: TCP port, ``"0"`` (default) for a free one;
* ``signing``: ``"ok"`` (default); ``"wrong-key"`` MACs answers with a key the
  adapter does not hold; ``"none"`` sends answers without field 64;
* ``fault``: how to break every answer: ``""`` (default, none), ``"truncate"``
  (half an answer, then close), ``"oversize"`` (a length prefix of 65,535),
  ``"garbage"`` (a well-framed body that is not ISO 8583), ``"silent"`` (read and
  process, never answer). Also settable later with :meth:`MirSimulator.set_fault`;
* ``terminal_id``, ``merchant_id``, ``timeout``: passed on in :meth:`adapter_config`
  (the host does not check ids; ``timeout`` defaults to ``"5"`` seconds).

The MAC key is generated when the simulator is built and never leaves the process
except through :meth:`adapter_config`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import struct
import threading
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import BinaryIO

from adapters.base import Discrepancy, DiscrepancyKind, MethodKind, PaymentMethod, TxnStatus, Unsupported
from adapters.mir import protocol
from adapters.mir.host import FramedServer, Reply
from adapters.mir.protocol import ANSWER_MTI, ProtocolError
from adapters.mir.register import write_register
from adapters.mir.scheme import APPROVING_PAN, DECLINING_PANS, MirScheme
from adapters.mir.terms import CURRENCY, RAIL
from adapters.simulation import (
    SettlementBook,
    apply_discrepancies,
    plan_random,
    random_kinds,
    refuse_uncarried,
)

logger = logging.getLogger(__name__)

SIGNING_MODES = ("ok", "wrong-key", "none")
FAULTS = ("", "truncate", "oversize", "garbage", "silent")
DECLINING_PAN = "2204000000000059"
#: Discrepancy kinds the register cannot carry, and why.
NOT_CARRIED: Mapping[DiscrepancyKind, str] = {
    DiscrepancyKind.FX_RATE_DIFFERS: "Mir settles in RUB only, so the register has no FX rate column",
}


class MirSimulator:
    """The simulated host. :meth:`start` and :meth:`stop` are synchronous; the host
    itself runs on a background thread."""

    name = RAIL

    def __init__(self, *, port: str = "0", signing: str = "ok", fault: str = "",
                 terminal_id: str = "TERM0001", merchant_id: str = "MERCHANT0000001",
                 timeout: str = "5") -> None:
        if signing not in SIGNING_MODES:
            raise ValueError(f"signing must be one of {SIGNING_MODES}, not {signing!r}")
        self.set_fault(fault)
        self._signing = signing
        self._terminal_id = terminal_id
        self._merchant_id = merchant_id
        self._timeout = timeout
        self._key = os.urandom(16)
        self._answer_key = os.urandom(16) if signing == "wrong-key" else self._key
        self.book = SettlementBook()
        self.scheme = MirScheme(self.book)
        self._errors_lock = threading.Lock()
        self._protocol_errors: list[tuple[str, str]] = []
        self._server = FramedServer(self._on_frame, self._on_protocol_error, port=int(port))

    def __repr__(self) -> str:
        return f"MirSimulator(signing={self._signing!r}, fault={self._fault!r})"

    # -- RailSimulator ------------------------------------------------------------

    def start(self) -> None:
        """Listen on 127.0.0.1 (a free port unless ``port`` was given)."""
        self._server.start()

    def stop(self) -> None:
        """Close the listener and every connection. The book is kept."""
        self._server.stop()

    def adapter_config(self) -> dict[str, str]:
        """``host``, ``port``, ``mac_key`` (hex), ``terminal_id``, ``merchant_id`` and
        ``timeout`` for :meth:`adapters.mir.client.MirRail.from_config`."""
        return {"host": "127.0.0.1", "port": str(self._server.port), "mac_key": self._key.hex(),
                "terminal_id": self._terminal_id, "merchant_id": self._merchant_id,
                "timeout": self._timeout}

    def approving_method(self) -> PaymentMethod:
        return PaymentMethod(kind=MethodKind.CARD, pan=APPROVING_PAN, expiry="3112")

    def declining_method(self) -> tuple[PaymentMethod, str]:
        return PaymentMethod(kind=MethodKind.CARD, pan=DECLINING_PAN, expiry="3112"), DECLINING_PANS[DECLINING_PAN]

    def transaction_status(self, reference: str) -> TxnStatus:
        """The state of the transaction the operation ``reference`` (an authorization,
        sale, capture, refund or reversal) belongs to; ``DECLINED`` for a declined
        operation, ``NOT_FOUND`` for a reference the host never processed."""
        return self.scheme.status(reference)

    def notification_for(self, reference: str) -> tuple[Mapping[str, str], bytes]:
        """The Mir host sends no asynchronous notifications: always :class:`Unsupported`."""
        raise Unsupported("the mir host sends no notifications", rail=RAIL)

    def write_settlement_file(self, out: BinaryIO, settlement_date: dt.date,
                              discrepancies: Sequence[Discrepancy] = (),
                              seed: int | None = None,
                              rate: Decimal = Decimal(0)) -> list[Discrepancy]:
        """Write the register of everything captured or refunded and not yet written,
        plus the records held back as LATE by an earlier file, all settling on
        ``settlement_date`` (a late record is paid with the file it finally comes in).
        ``discrepancies`` are applied as listed, then, with ``seed``, a random one per
        payment with probability ``rate``. A kind the register cannot carry
        (:data:`NOT_CARRIED`) in ``discrepancies`` raises
        :class:`~adapters.simulation.DiscrepancyNotCarried` and writes nothing."""
        refuse_uncarried(RAIL, discrepancies, NOT_CARRIED)
        pending, held = self.book.take()
        records = [dataclasses.replace(r, settlement_date=settlement_date) for r in pending + held]
        planned = list(discrepancies)
        if seed is not None:
            planned += plan_random(records, seed, rate, random_kinds(NOT_CARRIED))
        written, late, applied = apply_discrepancies(records, planned, rail=RAIL,
                                                     settlement_date=settlement_date, currency=CURRENCY)
        self.book.hold_back(late)
        write_register(out, written)
        return applied

    # -- test hooks ---------------------------------------------------------------

    def set_fault(self, fault: str) -> None:
        """Break every answer from now on (see the module docstring); ``""`` repairs."""
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}, not {fault!r}")
        self._fault = fault

    def protocol_errors(self) -> list[tuple[str, str]]:
        """(kind, detail) of every frame the host could not take: ``truncated``,
        ``oversized``, ``empty``, ``garbage``, ``unsupported``, ``bad-mac``."""
        with self._errors_lock:
            return list(self._protocol_errors)

    # -- the wire -----------------------------------------------------------------

    def _on_protocol_error(self, kind: str, detail: str) -> None:
        logger.warning("mir host rejected a frame: %s (%s)", kind, detail)
        with self._errors_lock:
            self._protocol_errors.append((kind, detail))

    def _on_frame(self, body: bytes) -> Reply | None:
        try:
            request = protocol.decode(body)
        except ProtocolError as exc:
            self._on_protocol_error("garbage", str(exc))
            return Reply(b"", close=True)
        if request["t"] not in ANSWER_MTI:
            self._on_protocol_error("unsupported", f"MTI {request['t']}")
            return Reply(b"", close=True)
        if not protocol.mac_is_valid(self._key, body, request):
            self._on_protocol_error("bad-mac", f"MTI {request['t']} RRN {request.get('37', '-')}")
            answer = {"t": ANSWER_MTI[request["t"]], "39": "63"}
            answer.update({name: request[name] for name in ("7", "11", "37", "41", "42") if name in request})
            return self._emit(answer)
        result = self.scheme.process(request)
        if result.silent or self._fault == "silent":
            return None
        return self._emit(result.fields)

    def _emit(self, fields: dict[str, str]) -> Reply:
        """Encode, MAC (per ``signing``) and frame an answer, broken per ``fault``."""
        if self._signing == "none":
            body = protocol.encode_unsigned(fields)
        else:
            body = protocol.encode(fields, self._answer_key)
        match self._fault:
            case "truncate":
                return Reply(protocol.frame(body)[:2 + len(body) // 2], close=True)
            case "oversize":
                return Reply(struct.pack(">H", 0xFFFF) + body, close=True)
            case "garbage":
                return Reply(protocol.frame(b"\x00\xffNOT ISO 8583\xfe" + body[:8]))
        return Reply(protocol.frame(body))
