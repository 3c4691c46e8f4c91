"""Interoperability with pyiso8583 as a third party: every message the adapter sends
decodes with ``iso8583.decode(..., specs.default_ascii)`` (captured at the host
side of the wire), and the host accepts messages built with ``iso8583.encode``."""

from __future__ import annotations

import socket
import struct

import iso8583
import pytest
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.cmac import CMAC
from iso8583.specs import default_ascii

from adapters.base import (
    CaptureRequest,
    Declined,
    QueryRequest,
    RefundRequest,
    TxnStatus,
    VoidRequest,
)
from adapters.mir import MirSimulator, protocol
from adapters.testing import new_reference

from .conftest import RUB, authorize_request, port_of, rail_for
from .wire import Relay

ALLOWED_FIELDS = {"t", "p", "1", "2", "3", "4", "7", "11", "12", "13", "14", "37", "41", "42", "48", "49",
                  "62", "64", "90", "128"}


def test_every_message_the_adapter_sends_decodes_with_pyiso8583(sim: MirSimulator) -> None:
    key = bytes.fromhex(sim.adapter_config()["mac_key"])
    with Relay(port_of(sim)) as relay:
        rail = rail_for(sim, port=str(relay.port))
        auth = rail.authorize(authorize_request(sim.approving_method(), 900_00))
        rail.capture(CaptureRequest(reference=new_reference("cap"), rail_reference=auth.rail_reference,
                                    amount=400_00, currency=RUB, final=False))
        rail.void(VoidRequest(reference=new_reference("void"), rail_reference=auth.rail_reference,
                              amount=500_00, currency=RUB))
        rail.refund(RefundRequest(reference=new_reference("ref"), rail_reference=auth.rail_reference,
                                  amount=100_00, currency=RUB))
        rail.authorize(authorize_request(sim.approving_method(), 50_00, capture=True))
        method, _ = sim.declining_method()
        with pytest.raises(Declined):
            rail.authorize(authorize_request(method, 10_00))
        for operation in ("authorize", "sale", "capture", "refund", "void"):
            rail.query(QueryRequest(reference=auth.reference, operation=operation))
    assert len(relay.requests) == 11
    mtis = []
    for raw in relay.requests:
        fields, _ = iso8583.decode(raw, default_ascii)
        mtis.append(fields["t"])
        assert set(fields) <= ALLOWED_FIELDS, f"unexpected fields {set(fields) - ALLOWED_FIELDS}"
        assert fields["49"] == "643"
        assert fields["3"] in ("000000", "200000")
        assert (fields["37"], fields["11"]) == protocol.derive_ids(fields["48"])
        assert ("2" in fields) == (fields["t"] in ("0100", "0200") and fields["3"] == "000000")
        mac_field = "128" if "1" in fields else "64"
        assert raw[-16:].decode() == fields[mac_field]
        assert protocol.mac_is_valid(key, raw, fields)
    assert mtis == ["0100", "0220", "0400", "0200", "0200", "0100", "0101", "0201", "0221", "0201", "0401"]
    for raw in relay.answers:
        fields, _ = iso8583.decode(raw, default_ascii)
        assert fields["t"] in ("0110", "0210", "0230", "0410")
        assert "2" not in fields, "answers never carry the PAN"


def cmac_hex(key: bytes, data: bytes) -> str:
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()[:8].hex().upper()


def encode_by_hand(fields: dict[str, str], key: bytes) -> bytes:
    """What any ISO 8583 library user would do: encode with a placeholder MAC, then
    put the CMAC of everything before it in its place."""
    mac_field = "128" if any(int(name) > 64 for name in fields if name.isdigit()) else "64"
    doc = {**fields, mac_field: "0" * 16}
    raw, _ = iso8583.encode(doc, default_ascii)
    return bytes(raw[:-16]) + cmac_hex(key, bytes(raw[:-16])).encode()


def send(port: int, body: bytes) -> dict[str, str]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(struct.pack(">H", len(body)) + body)
        (length,) = struct.unpack(">H", receive(conn, 2))
        answer, _ = iso8583.decode(receive(conn, length), default_ascii)
        return answer


def receive(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        assert chunk, "the host closed the connection"
        data += chunk
    return data


def test_the_host_accepts_messages_encoded_with_pyiso8583(sim: MirSimulator) -> None:
    key = bytes.fromhex(sim.adapter_config()["mac_key"])
    common = {"7": "0102030405", "12": "101010", "13": "0102", "41": "TERM0042",
              "42": "SHOP00000000042", "49": "643"}
    auth = send(port_of(sim), encode_by_hand({
        "t": "0100", "2": "2200000000000004", "3": "000000", "4": "000000123400", "11": "000777",
        "37": "ABC123456789", "48": "third-party-1", **common}, key))
    assert (auth["t"], auth["39"], auth["44"], auth["37"]) == ("0110", "00", "authorized", "ABC123456789")
    assert len(auth["38"]) == 6

    completion = send(port_of(sim), encode_by_hand({
        "t": "0220", "3": "000000", "4": "000000123400", "11": "000778", "37": "ABC123456790",
        "48": "third-party-2", "90": "ABC123456789".ljust(42, "0"), **common}, key))
    assert (completion["t"], completion["39"], completion["44"]) == ("0230", "00", "captured")

    inquiry = send(port_of(sim), encode_by_hand({
        "t": "0101", "3": "000000", "11": "000777", "37": "ABC123456789", "48": "third-party-1",
        **common}, key))
    assert (inquiry["39"], inquiry["44"], inquiry["4"]) == ("00", "captured", "000000123400")
    assert sim.transaction_status("third-party-2") is TxnStatus.CAPTURED


def test_a_request_missing_a_mandatory_field_is_a_format_error(sim: MirSimulator) -> None:
    key = bytes.fromhex(sim.adapter_config()["mac_key"])
    answer = send(port_of(sim), encode_by_hand({
        "t": "0100", "3": "000000", "4": "000000001000", "7": "0102030405", "11": "000001",
        "37": "000000000001", "41": "TERM0001", "42": "MERCHANT0000001", "48": "no-pan", "49": "643"},
        key))
    assert (answer["t"], answer["39"]) == ("0110", "30")
