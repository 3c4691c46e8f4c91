"""The canonical encoding of a ledger entry: the bytes the journal seals.

Version 1 (the only one so far) is one version byte ``0x01`` followed by a JSON
array, serialised deterministically: no whitespace (``,`` and ``:`` separators),
object keys sorted by code point, every non-ASCII character escaped as ``\\u`` and four hex digits
(UTF-16 surrogate pairs beyond the BMP) and control characters as JSON's short
escapes (``\\n``) or ``\\u`` escapes, so the bytes are pure ASCII; no NaN or infinity. It is
exactly what Python's ``json.dumps(doc, ensure_ascii=True, separators=(",", ":"),
sort_keys=True, allow_nan=False)`` produces. The array is positional::

    [entry_id, idempotency_key, kind, effective_at, recorded_at, description, metadata,
     reverses_entry_id, hold_id,
     [[posting_id, account_id, account_code, side, amount, currency, pending], ...]]

* ids and amounts are JSON integers; amounts are minor units of the posting's
  currency (``150000`` is 1500.00 RUB), always > 0;
* times are UTC with microseconds, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``;
* ``metadata`` is the entry's JSON object; ``reverses_entry_id`` and ``hold_id`` are
  integers or ``null``;
* ``side`` is ``"D"`` or ``"C"``; ``pending`` is ``true`` for a hold's pending
  posting; postings come in posting-id order (an entry that voids or expires a
  hold has none).

The Merkle leaf of an entry is ``SHA-256(0x00 || canonical bytes)`` (RFC 9162
section 2.1.1). A future version would change the first byte, so a verifier always
knows which layout it reads.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from settlement.journal.errors import InvalidCanonicalEntry

VERSION = 1
_VERSION_BYTE = bytes([VERSION])
_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), sort_keys=True, allow_nan=False)


def _refuse(value: object) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# The same serialisation as _ENCODER, built once: JSONEncoder.encode builds its C
# encoder anew on every call, which costs a third of encoding an entry. No circular
# check (values come from parsed JSON and typed columns; a cycle would hit the
# recursion limit, which encode_fields turns into the same error).
_C_ENCODER = json.encoder.c_make_encoder  # type: ignore[attr-defined]
_ENTRY_ENCODER = (_C_ENCODER(None, _refuse, json.encoder.encode_basestring_ascii, None, ":", ",", True, False, False)
                  if _C_ENCODER is not None else None)
_TIME_FORMAT_LENGTH = len("2026-01-01T00:00:00.000000Z")


@dataclass(frozen=True, slots=True)
class CanonicalPosting:
    posting_id: int
    account_id: int
    account_code: str
    side: str
    amount: int
    currency: str
    pending: bool


@dataclass(frozen=True, slots=True)
class CanonicalEntry:
    """Everything of an entry the journal seals. Times are canonical strings
    (:func:`format_time`)."""

    entry_id: int
    idempotency_key: str
    kind: str
    effective_at: str
    recorded_at: str
    description: str
    metadata: Mapping[str, Any]
    reverses_entry_id: int | None
    hold_id: int | None
    postings: Sequence[CanonicalPosting] = field(default_factory=tuple)


def format_time(value: dt.datetime) -> str:
    """An aware datetime as the canonical UTC string with microseconds."""
    if value.tzinfo is None:
        raise InvalidCanonicalEntry("naive datetime: the canonical encoding needs an aware time", field="time")
    v = value.astimezone(dt.UTC)
    # Not strftime: its %Y does not pad years before 1000 to four digits everywhere.
    return (f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}."
            f"{v.microsecond:06d}Z")


def parse_time(text: str) -> dt.datetime:
    """The inverse of :func:`format_time`; refuses any other shape."""
    if not isinstance(text, str) or len(text) != _TIME_FORMAT_LENGTH or not text.endswith("Z"):
        raise InvalidCanonicalEntry(f"{text!r} is not a canonical time (YYYY-MM-DDTHH:MM:SS.ffffffZ)",
                                    field="time")
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise InvalidCanonicalEntry(f"{text!r} is not a canonical time", field="time") from None


def canonical_json(value: Any) -> str:
    """A JSON value in the canonical serialisation (used for metadata in exports)."""
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError) as exc:
        raise InvalidCanonicalEntry(f"not canonical JSON: {exc}", field="metadata") from None


def encode(entry: CanonicalEntry) -> bytes:
    """The canonical bytes of ``entry``, after checking every field's type and shape."""
    _check(entry)
    return encode_fields(entry.entry_id, entry.idempotency_key, entry.kind, entry.effective_at,
                         entry.recorded_at, entry.description, entry.metadata, entry.reverses_entry_id,
                         entry.hold_id, [[p.posting_id, p.account_id, p.account_code, p.side, p.amount,
                                          p.currency, p.pending] for p in entry.postings])


def encode_fields(  # noqa: PLR0917 - the fields of the canonical layout, in its order
        entry_id: int, idempotency_key: str, kind: str, effective_at: str, recorded_at: str, description: str,
        metadata: Mapping[str, Any], reverses_entry_id: int | None, hold_id: int | None,
        postings: list[list[Any]]) -> bytes:
    """The canonical bytes from values already known to be well formed (the sealer
    reads them from the ledger's typed columns); :func:`encode` checks first."""
    doc = [entry_id, idempotency_key, kind, effective_at, recorded_at, description, metadata, reverses_entry_id,
           hold_id, postings]
    try:
        text = "".join(_ENTRY_ENCODER(doc, 0)) if _ENTRY_ENCODER is not None else _ENCODER.encode(doc)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidCanonicalEntry(f"entry {entry_id} cannot be encoded: {exc}", entry_id=entry_id) from None
    return _VERSION_BYTE + text.encode("ascii")


def leaf_hash(canonical: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 || canonical bytes)."""
    return hashlib.sha256(b"\x00" + canonical).digest()


def entry_leaf(entry: CanonicalEntry) -> bytes:
    return leaf_hash(encode(entry))


def decode(data: bytes) -> CanonicalEntry:
    """Read canonical bytes back (version 1), refusing anything that would not
    encode to the same bytes."""
    if not data or data[0] != VERSION:
        raise InvalidCanonicalEntry("unknown canonical encoding version", field="version")
    try:
        doc = json.loads(data[1:].decode("ascii"))
        (entry_id, key, kind, effective_at, recorded_at, description, metadata, reverses, hold, postings) = doc
        entry = CanonicalEntry(entry_id, key, kind, effective_at, recorded_at, description, metadata, reverses,
                               hold, tuple(CanonicalPosting(*p) for p in postings))
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidCanonicalEntry(f"not a version 1 canonical entry: {exc}", field="bytes") from None
    if encode(entry) != data:
        raise InvalidCanonicalEntry("bytes are not in canonical form", field="bytes")
    return entry


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(entry: CanonicalEntry) -> None:
    where = {"entry_id": entry.entry_id if _is_int(entry.entry_id) else None}
    if not _is_int(entry.entry_id) or entry.entry_id < 1:
        raise InvalidCanonicalEntry("entry_id must be a positive integer", field="entry_id")
    for name in ("idempotency_key", "kind", "description"):
        if not isinstance(getattr(entry, name), str):
            raise InvalidCanonicalEntry(f"{name} must be a string", field=name, **where)
    for name in ("effective_at", "recorded_at"):
        parse_time(getattr(entry, name))
    if not isinstance(entry.metadata, Mapping):
        raise InvalidCanonicalEntry("metadata must be a JSON object", field="metadata", **where)
    for name in ("reverses_entry_id", "hold_id"):
        value = getattr(entry, name)
        if value is not None and not _is_int(value):
            raise InvalidCanonicalEntry(f"{name} must be an integer or null", field=name, **where)
    _check_postings(entry.postings, where)


def _check_postings(postings: Sequence[CanonicalPosting], where: dict[str, Any]) -> None:
    previous = 0
    for position, p in enumerate(postings):
        name = f"postings[{position}]"
        if not isinstance(p, CanonicalPosting):
            raise InvalidCanonicalEntry(f"{name} is not a posting", field=name, **where)
        if not _is_int(p.posting_id) or p.posting_id <= previous:
            raise InvalidCanonicalEntry(f"{name}: posting ids must be positive and increasing",
                                        field=f"{name}.posting_id", **where)
        previous = p.posting_id
        if not _is_int(p.account_id) or not isinstance(p.account_code, str) or not p.account_code:
            raise InvalidCanonicalEntry(f"{name}: account id and code are required", field=f"{name}.account",
                                        **where)
        if p.side not in ("D", "C"):
            raise InvalidCanonicalEntry(f"{name}: side must be D or C", field=f"{name}.side", **where)
        if not _is_int(p.amount) or p.amount <= 0:
            raise InvalidCanonicalEntry(f"{name}: amount must be a positive integer of minor units",
                                        field=f"{name}.amount", **where)
        if not isinstance(p.currency, str) or len(p.currency) != 3 or not (p.currency.isalpha()
                                                                            and p.currency.isupper()):
            raise InvalidCanonicalEntry(f"{name}: currency must be an ISO 4217 code", field=f"{name}.currency",
                                        **where)
        if not isinstance(p.pending, bool):
            raise InvalidCanonicalEntry(f"{name}: pending must be a boolean", field=f"{name}.pending", **where)
