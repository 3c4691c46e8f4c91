"""Message authentication: every answer's MAC is checked by the adapter, every
request's by the host, with the bytes really crossing a socket."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable

import iso8583
import pytest
from iso8583.specs import default_ascii

from adapters.base import Malformed, QueryRequest, SignatureInvalid, TxnStatus
from adapters.mir import MirSimulator, protocol
from adapters.mir.terms import moscow_now
from adapters.mir.transport import exchange

from .conftest import authorize_request, port_of, rail_for
from .wire import Relay


def flip_last_digit_of_field(name: str) -> Callable[[bytes], bytes]:
    """Alter one field of a message in flight, leaving its MAC as it was."""
    def alter(body: bytes) -> bytes:
        fields, _ = iso8583.decode(body, default_ascii)
        value = fields[name]
        fields[name] = value[:-1] + ("1" if value[-1] != "1" else "2")
        raw, _ = iso8583.encode(fields, default_ascii)
        return bytes(raw)
    return alter


def test_answers_macd_with_another_key_are_refused(make_sim: Callable[..., MirSimulator]) -> None:
    sim = make_sim(signing="wrong-key")
    with pytest.raises(SignatureInvalid, match="wrong MAC"):
        rail_for(sim).authorize(authorize_request(sim.approving_method(), 10_00))


def test_answers_without_a_mac_are_refused(make_sim: Callable[..., MirSimulator]) -> None:
    sim = make_sim(signing="none")
    with pytest.raises(SignatureInvalid, match="no MAC"):
        rail_for(sim).authorize(authorize_request(sim.approving_method(), 10_00))


def test_an_answer_tampered_in_flight_is_refused(sim: MirSimulator) -> None:
    with Relay(port_of(sim), alter_answer=flip_last_digit_of_field("38")) as relay:
        rail = rail_for(sim, port=str(relay.port))
        with pytest.raises(SignatureInvalid):
            rail.authorize(authorize_request(sim.approving_method(), 10_00))


def test_a_tampered_answer_mac_is_refused(sim: MirSimulator) -> None:
    with Relay(port_of(sim), alter_answer=flip_last_digit_of_field("128")) as relay, \
            pytest.raises(SignatureInvalid):
        rail_for(sim, port=str(relay.port)).authorize(authorize_request(sim.approving_method(), 10_00))


def test_a_request_tampered_in_flight_is_refused_by_the_host(sim: MirSimulator) -> None:
    with Relay(port_of(sim), alter_request=flip_last_digit_of_field("4")) as relay:
        request = authorize_request(sim.approving_method(), 10_00)
        with pytest.raises(SignatureInvalid, match="63"):
            rail_for(sim, port=str(relay.port)).authorize(request)
    assert sim.transaction_status(request.reference) is TxnStatus.NOT_FOUND, "a bad MAC was processed"
    assert [kind for kind, _ in sim.protocol_errors()] == ["bad-mac"]


def test_a_client_with_the_wrong_key_moves_no_money(sim: MirSimulator) -> None:
    rail = rail_for(sim, mac_key="00" * 16)
    request = authorize_request(sim.approving_method(), 10_00)
    with pytest.raises(SignatureInvalid):
        rail.authorize(request)
    assert sim.transaction_status(request.reference) is TxnStatus.NOT_FOUND


def test_the_host_answers_63_to_a_bad_request_mac(sim: MirSimulator) -> None:
    key = bytes.fromhex(sim.adapter_config()["mac_key"])
    fields = {"t": "0101", "3": "000000", "7": "0101000000", "11": "000001", "37": "000000000001",
              "41": "TERM0001", "42": "MERCHANT0000001", "48": "ref-1", "49": "643"}
    good = protocol.encode(fields, key)
    bad = good[:-1] + (b"0" if good[-1:] != b"0" else b"1")
    answer_raw = exchange("127.0.0.1", port_of(sim), bad, timeout=5)
    answer, _ = iso8583.decode(answer_raw, default_ascii)
    assert answer["39"] == "63"
    assert protocol.mac_is_valid(key, answer_raw, answer), "the rejection is itself authenticated"
    answer_raw = exchange("127.0.0.1", port_of(sim), good, timeout=5)
    assert iso8583.decode(answer_raw, default_ascii)[0]["39"] == "25"


# -- answers that are not for the request ---------------------------------------


def resigned(key: bytes, **changes: str) -> Callable[[bytes], bytes]:
    """Change fields of an answer in flight and MAC it again with the shared key: a host
    that answers with the wrong identifiers, not a tamperer."""
    def alter(body: bytes) -> bytes:
        fields = protocol.decode(body)
        fields.update(changes)
        return protocol.encode(fields, key)
    return alter


@pytest.mark.parametrize(("changes", "mismatch"), [
    ({"11": "000000"}, "STAN"),
    ({"37": "000000000000"}, "RRN"),
    ({"t": "0210"}, "MTI"),
])
def test_an_answer_with_other_identifiers_is_refused(sim: MirSimulator, changes: dict[str, str],
                                                    mismatch: str) -> None:
    key = bytes.fromhex(sim.adapter_config()["mac_key"])
    with Relay(port_of(sim), alter_answer=resigned(key, **changes)) as relay:
        request = authorize_request(sim.approving_method(), 10_00)
        with pytest.raises(Malformed, match=f"does not match request 0100 .*{mismatch}") as caught:
            rail_for(sim, port=str(relay.port)).authorize(request)
    assert caught.value.detail["mismatch"] == mismatch
    assert caught.value.detail["rrn"] == protocol.derive_ids(request.reference)[0]


class ReplayFirstAnswer:
    """Answers every request after the first with the first answer, as it was sent."""

    def __init__(self) -> None:
        self.first: bytes | None = None

    def __call__(self, body: bytes) -> bytes:
        if self.first is None:
            self.first = body
        return self.first


def test_a_replayed_earlier_answer_is_refused(sim: MirSimulator) -> None:
    replay = ReplayFirstAnswer()
    with Relay(port_of(sim), alter_answer=replay) as relay:
        rail = rail_for(sim, port=str(relay.port))
        first = rail.authorize(authorize_request(sim.approving_method(), 10_00))
        second = authorize_request(sim.approving_method(), 20_00)
        with pytest.raises(Malformed, match="does not match request 0100") as caught:
            rail.authorize(second)
    assert caught.value.detail["mismatch"] == "RRN,STAN"
    assert first.rrn in str(caught.value), "the error should show the replayed answer's RRN"
    # The host did process the second request: the client must not take the replay as its outcome.
    assert sim.transaction_status(second.reference) is TxnStatus.AUTHORIZED
    assert rail_for(sim).query(QueryRequest(reference=second.reference)).amount == 20_00


def test_a_replayed_request_gets_the_original_answer_and_moves_no_money_twice(sim: MirSimulator) -> None:
    with Relay(port_of(sim)) as relay:
        request = authorize_request(sim.approving_method(), 30_00, capture=True)
        rail_for(sim, port=str(relay.port)).authorize(request)
    [sent], [answered] = relay.requests, relay.answers
    again = exchange("127.0.0.1", port_of(sim), sent, timeout=5)
    original, replayed = protocol.decode(answered), protocol.decode(again)
    assert (replayed["39"], replayed["38"], replayed["37"], replayed["11"]) == (
        original["39"], original["38"], original["37"], original["11"])
    buffer = io.BytesIO()
    sim.write_settlement_file(buffer, moscow_now().date() + dt.timedelta(days=1))
    assert buffer.getvalue().count(request.reference.encode()) == 1, "a replayed sale settled twice"
