"""The wire codec on its own: round trips through pyiso8583, MAC coverage,
identifiers, framing limits, and the Mir card rules."""

from __future__ import annotations

import contextlib
import os

import iso8583
import pytest
from hypothesis import given
from hypothesis import strategies as st
from iso8583.specs import default_ascii

from adapters.base import luhn_valid
from adapters.mir import protocol
from adapters.mir.protocol import MAX_MESSAGE_LENGTH, ProtocolError
from adapters.mir.terms import is_mir_bin, is_valid_mir_pan

KEY = os.urandom(16)


def with_check_digit(body: str) -> str:
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


mir_pans = st.builds(lambda prefix, rest: with_check_digit(prefix + rest),
                     st.sampled_from(["2200", "2201", "2202", "2203", "2204"]),
                     st.text("0123456789", min_size=11, max_size=14))
references = st.from_regex(protocol.REFERENCE_PATTERN, fullmatch=True)
amounts = st.integers(1, 999_999_999_999)


@given(pan=mir_pans, amount=amounts, reference=references, mti=st.sampled_from(["0100", "0200"]),
       original=st.none() | st.from_regex(protocol.RRN_PATTERN, fullmatch=True))
def test_messages_round_trip_through_pyiso8583(pan: str, amount: int, reference: str, mti: str,
                                               original: str | None) -> None:
    rrn, stan = protocol.derive_ids(reference)
    fields = {"t": mti, "2": pan, "3": "000000", "4": f"{amount:012d}", "7": "0105101010", "11": stan,
              "37": rrn, "41": "TERM0001", "42": "MERCHANT0000001", "48": reference, "49": "643"}
    if original:
        fields["90"] = protocol.original_data(original)
    raw = protocol.encode(fields, KEY)
    decoded, _ = iso8583.decode(raw, default_ascii)
    assert {k: v for k, v in decoded.items() if k not in ("p", "1", "64", "128")} == fields
    assert protocol.mac_is_valid(KEY, raw, decoded)
    assert ("128" in decoded) == (original is not None)
    assert protocol.decode(raw) == decoded


@given(reference=references, position=st.integers(0, 10_000), byte=st.integers(0, 255))
def test_any_changed_byte_is_caught(reference: str, position: int, byte: int) -> None:
    rrn, stan = protocol.derive_ids(reference)
    raw = protocol.encode({"t": "0110", "3": "000000", "4": "000000001000", "11": stan, "37": rrn,
                           "38": "123456", "39": "00", "44": "authorized", "48": reference,
                           "90": protocol.original_data(rrn)}, KEY)
    position %= len(raw)
    if raw[position] == byte:
        return
    tampered = raw[:position] + bytes([byte]) + raw[position + 1:]
    try:
        fields = protocol.decode(tampered)
    except ProtocolError:
        return
    assert not protocol.mac_is_valid(KEY, tampered, fields)


def test_a_mac_made_with_another_key_is_invalid() -> None:
    raw = protocol.encode({"t": "0110", "39": "00", "37": "000000000001"}, KEY)
    fields = protocol.decode(raw)
    assert protocol.mac_is_valid(KEY, raw, fields)
    assert not protocol.mac_is_valid(os.urandom(16), raw, fields)
    unsigned = protocol.encode_unsigned({"t": "0110", "39": "00", "37": "000000000001"})
    assert not protocol.mac_is_valid(KEY, unsigned, protocol.decode(unsigned))


@given(st.binary(max_size=300))
def test_decoding_garbage_only_raises_protocol_error(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        protocol.decode(data)


@given(references)
def test_identifiers_are_derived_from_the_reference(reference: str) -> None:
    rrn, stan = protocol.derive_ids(reference)
    assert (len(rrn), len(stan)) == (12, 6)
    assert rrn.isdigit()
    assert stan.isdigit()
    assert protocol.derive_ids(reference) == (rrn, stan)


def test_frames_are_limited() -> None:
    assert protocol.frame(b"x") == b"\x00\x01x"
    assert protocol.frame_length(b"\x10\x00") == MAX_MESSAGE_LENGTH
    for prefix in (b"\x00\x00", b"\x10\x01", b"\xff\xff"):
        with pytest.raises(ProtocolError):
            protocol.frame_length(prefix)
    with pytest.raises(ProtocolError):
        protocol.frame(b"x" * (MAX_MESSAGE_LENGTH + 1))


def test_keys_are_checked() -> None:
    assert protocol.parse_key("00" * 32) == bytes(32)
    for bad in ("zz" * 16, "00" * 15):
        with pytest.raises(ValueError, match="mac_key"):
            protocol.parse_key(bad)


@given(mir_pans)
def test_mir_pans_pass_luhn_and_one_wrong_digit_fails(pan: str) -> None:
    assert is_valid_mir_pan(pan)
    for position in range(len(pan)):
        digit = str((int(pan[position]) + 1) % 10)
        assert not luhn_valid(pan[:position] + digit + pan[position + 1:])


@pytest.mark.parametrize(("pan", "mir"), [
    ("2200000000000004", True), ("2204999999999999999", True), ("2205000000000000", False),
    ("2199999999999999", False), ("4111111111111111", False), ("220000000000000", False),
])
def test_the_mir_bin_range(pan: str, mir: bool) -> None:
    assert is_mir_bin(pan) is mir
