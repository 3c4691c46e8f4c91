"""The canonical encoding: its exact bytes, its round trip, and what it refuses."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlement.journal.canonical import (
    VERSION,
    CanonicalEntry,
    CanonicalPosting,
    decode,
    encode,
    entry_leaf,
    format_time,
    parse_time,
)
from settlement.journal.errors import InvalidCanonicalEntry

ENTRY = CanonicalEntry(
    entry_id=7, idempotency_key="pay:\u00e9:1", kind="payment.capture", effective_at="2026-11-01T12:00:00.000000Z",
    recorded_at="2026-11-01T12:00:01.250000Z", description="line\n\"two\"", metadata={"b": 1, "a": ["x", None]},
    reverses_entry_id=None, hold_id=3,
    postings=(CanonicalPosting(10, 1, "wallet:1:RUB", "D", 150000, "RUB", False),
              CanonicalPosting(11, 2, "shop:RUB", "C", 150000, "RUB", True)))


def test_the_bytes_of_version_1_are_fixed() -> None:
    expected = (b'\x01[7,"pay:\\u00e9:1","payment.capture","2026-11-01T12:00:00.000000Z",'
                b'"2026-11-01T12:00:01.250000Z","line\\n\\"two\\"",{"a":["x",null],"b":1},null,3,'
                b'[[10,1,"wallet:1:RUB","D",150000,"RUB",false],[11,2,"shop:RUB","C",150000,"RUB",true]]]')
    assert encode(ENTRY) == expected
    assert entry_leaf(ENTRY) == hashlib.sha256(b"\x00" + expected).digest()
    assert expected[0] == VERSION


def test_every_field_changes_the_bytes() -> None:
    base = encode(ENTRY)
    changes = [{"entry_id": 8}, {"idempotency_key": "other"}, {"kind": "transfer"},
               {"effective_at": "2026-11-01T12:00:00.000001Z"}, {"recorded_at": "2026-11-01T12:00:01.250001Z"},
               {"description": "line"}, {"metadata": {"b": 2, "a": ["x", None]}}, {"reverses_entry_id": 1},
               {"hold_id": None}, {"postings": ENTRY.postings[:1]}]
    for change in changes:
        assert encode(dataclasses.replace(ENTRY, **change)) != base, change  # type: ignore[arg-type]
    posting_changes = [{"posting_id": 9}, {"account_id": 9}, {"account_code": "x"}, {"side": "C"},
                       {"amount": 150001}, {"currency": "CNY"}, {"pending": True}]
    for change in posting_changes:
        postings = (dataclasses.replace(ENTRY.postings[0], **change), ENTRY.postings[1])  # type: ignore[arg-type]
        assert encode(dataclasses.replace(ENTRY, postings=postings)) != base, change


def test_metadata_key_order_does_not_matter_and_output_is_ascii() -> None:
    reordered = dataclasses.replace(ENTRY, metadata={"a": ["x", None], "b": 1})
    assert encode(reordered) == encode(ENTRY)
    assert encode(dataclasses.replace(ENTRY, description="\u4e2d\U0001f600")).isascii()


def test_times_round_trip_and_are_utc() -> None:
    moment = dt.datetime(2026, 3, 4, 5, 6, 7, 89, tzinfo=dt.timezone(dt.timedelta(hours=3)))
    text = format_time(moment)
    assert text == "2026-03-04T02:06:07.000089Z"
    assert parse_time(text) == moment


@pytest.mark.parametrize(("change", "field"), [
    ({"entry_id": 0}, "entry_id"),
    ({"entry_id": True}, "entry_id"),
    ({"kind": None}, "kind"),
    ({"effective_at": "2026-11-01T12:00:00Z"}, "time"),
    ({"recorded_at": "2026-11-01 12:00:01.250000"}, "time"),
    ({"metadata": ["not", "an", "object"]}, "metadata"),
    ({"hold_id": "3"}, "hold_id"),
])
def test_bad_entry_fields_are_refused(change: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidCanonicalEntry) as refused:
        encode(dataclasses.replace(ENTRY, **change))  # type: ignore[arg-type]
    assert refused.value.code == "invalid_canonical_entry"
    assert refused.value.detail["field"] == field


@pytest.mark.parametrize(("change", "field"), [
    ({"amount": 1.5}, "amount"),
    ({"amount": 0}, "amount"),
    ({"amount": True}, "amount"),
    ({"side": "X"}, "side"),
    ({"currency": "rub"}, "currency"),
    ({"currency": "R1B"}, "currency"),
    ({"pending": 1}, "pending"),
    ({"account_code": ""}, "account"),
    ({"posting_id": 0}, "posting_id"),
])
def test_bad_postings_are_refused(change: dict[str, object], field: str) -> None:
    postings = (dataclasses.replace(ENTRY.postings[0], **change), ENTRY.postings[1])  # type: ignore[arg-type]
    with pytest.raises(InvalidCanonicalEntry) as refused:
        encode(dataclasses.replace(ENTRY, postings=postings))
    assert refused.value.detail["field"] == f"postings[0].{field}"


def test_naive_times_and_nan_metadata_are_refused() -> None:
    with pytest.raises(InvalidCanonicalEntry):
        format_time(dt.datetime(2026, 1, 1))
    with pytest.raises(InvalidCanonicalEntry):
        encode(dataclasses.replace(ENTRY, metadata={"x": float("nan")}))


def test_decode_refuses_other_versions_and_non_canonical_bytes() -> None:
    data = encode(ENTRY)
    assert decode(data) == ENTRY
    with pytest.raises(InvalidCanonicalEntry):
        decode(b"\x02" + data[1:])
    spaced = b"\x01" + json.dumps(json.loads(data[1:])).encode()
    with pytest.raises(InvalidCanonicalEntry):
        decode(spaced)


_text = st.text(max_size=20)
_postings = st.lists(st.tuples(st.integers(1, 10**6), _text.filter(bool), st.sampled_from("DC"),
                               st.integers(1, 2**63 - 1), st.sampled_from(["RUB", "CNY", "JPY"]), st.booleans()),
                     max_size=5)
_metadata = st.dictionaries(_text, st.recursive(st.none() | st.booleans() | st.integers() | _text,
                                                lambda inner: st.lists(inner, max_size=3), max_leaves=5), max_size=4)


@given(entry_id=st.integers(1, 2**63 - 1), key=_text, kind=_text, description=_text, metadata=_metadata,
       postings=_postings, stamp=st.datetimes(timezones=st.just(dt.UTC)))
def test_round_trip(entry_id: int, key: str, kind: str, description: str, metadata: dict[str, object],
                    postings: list[tuple[int, str, str, int, str, bool]], stamp: dt.datetime) -> None:
    rows = tuple(CanonicalPosting(n + 1, account, code, side, amount, currency, pending)
                 for n, (account, code, side, amount, currency, pending) in enumerate(postings))
    entry = CanonicalEntry(entry_id, key, kind, format_time(stamp), format_time(stamp), description, metadata,
                           None, None, rows)
    data = encode(entry)
    assert data.isascii()
    assert decode(data) == entry
    assert encode(decode(data)) == data


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3), max_leaves=10)


@given(key=st.text(), description=st.text(), metadata=st.dictionaries(st.text(), _JSON_VALUES, max_size=4),
       code=st.text(min_size=1), amount=st.integers(min_value=1, max_value=2**63 - 1))
def test_the_bytes_are_what_the_documented_json_dumps_call_gives(key: str, description: str,
                                                                 metadata: dict[str, object], code: str,
                                                                 amount: int) -> None:
    entry = dataclasses.replace(ENTRY, idempotency_key=key, description=description, metadata=metadata,
                                postings=(dataclasses.replace(ENTRY.postings[0], account_code=code, amount=amount),
                                          ENTRY.postings[1]))
    doc = [entry.entry_id, key, entry.kind, entry.effective_at, entry.recorded_at, description, metadata, None, 3,
           [[p.posting_id, p.account_id, p.account_code, p.side, p.amount, p.currency, p.pending]
            for p in entry.postings]]
    assert encode(entry) == b"\x01" + json.dumps(doc, ensure_ascii=True, separators=(",", ":"), sort_keys=True,
                                                 allow_nan=False).encode("ascii")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {1, 2}, b"bytes"])
def test_metadata_that_json_cannot_hold_is_refused(value: object) -> None:
    with pytest.raises(InvalidCanonicalEntry):
        encode(dataclasses.replace(ENTRY, metadata={"x": value}))
    again: dict[str, object] = {}
    again["self"] = [again]
    with pytest.raises(InvalidCanonicalEntry):
        encode(dataclasses.replace(ENTRY, metadata=again))
