"""Validation of write requests and their idempotency fingerprints.

Everything here is pure Python and runs before the database is touched, so a
malformed request is refused with a precise code and nothing is written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from settlement.ledger.errors import InvalidEntry, UnbalancedEntry
from settlement.ledger.models import EntryKind, Side
from settlement.ledger.store import EntryRow
from settlement.ledger.types import AccountRef, EntrySpec, PostingSpec, PostingView
from settlement.money import check_currency, check_minor

RESERVED_KINDS = frozenset(k.value for k in EntryKind) - {EntryKind.TRANSFER.value}
MAX_KEY_LENGTH = 200


@dataclass(slots=True)
class Leg:
    """A posting to write: ``pending`` legs move pending counters (holds)."""

    account: AccountRef
    side: Side
    amount: int
    currency: str
    pending: bool = False


@dataclass(slots=True)
class Release:
    """Pending amount a hold resolution gives back (no posting: the hold's own pending
    postings stop counting once the hold is resolved)."""

    account_id: int
    side: Side
    amount: int


@dataclass(slots=True)
class Write:
    """One entry the engine must apply, in order, atomically with the others."""

    entry: EntryRow
    legs: list[Leg]
    releases: list[Release] = field(default_factory=list)
    #: Runs after the entry is inserted, with its id, recorded_at and postings (the
    #: hold operations write their hold rows here).
    after_insert: Callable[[int, dt.datetime, Sequence[PostingView]], None] | None = None


def fingerprint(payload: Any) -> str:
    """SHA-256 of the canonical JSON of a request: what "the same request" means."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=_default, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def check_key(key: object) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidEntry(f"idempotency key must be a non-empty string of at most {MAX_KEY_LENGTH} "
                           "characters", field="idempotency_key")
    return key


def check_time(value: dt.datetime | None, name: str) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise InvalidEntry(f"{name} must be a timezone-aware datetime", field=name)
    return value.astimezone(dt.UTC)


def check_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    data = dict(metadata or {})
    try:
        json.dumps(data)
    except (TypeError, ValueError) as exc:
        raise InvalidEntry(f"metadata must be JSON: {exc}", field="metadata") from None
    return data


def check_account_ref(ref: object, field_name: str) -> AccountRef:
    if isinstance(ref, bool) or not isinstance(ref, int | str) or ref == "":
        raise InvalidEntry(f"{field_name} must be an account id or code", field=field_name)
    return ref


def check_legs(postings: Sequence[PostingSpec], index: int | None = None) -> list[Leg]:
    """Validate postings: amounts, currencies, sides, and that they balance per
    currency with at least one debit and one credit."""
    where = {} if index is None else {"index": index}
    given: object = postings
    if isinstance(given, str | bytes) or len(postings) < 2:
        raise InvalidEntry("an entry needs at least two postings", field="postings", **where)
    legs: list[Leg] = []
    totals: dict[str, int] = {}
    sides: set[Side] = set()
    for position, posting in enumerate(postings):
        name = f"postings[{position}]"
        if not isinstance(posting, PostingSpec):
            raise InvalidEntry(f"{name} is not a posting", field=name, **where)
        account = check_account_ref(posting.account, f"{name}.account")
        try:
            side = Side(posting.side)
        except ValueError:
            raise InvalidEntry(f"{name}.side must be D or C", field=f"{name}.side", **where) from None
        amount = check_minor(posting.amount, field=f"{name}.amount")
        currency = check_currency(posting.currency)
        totals[currency] = totals.get(currency, 0) + (amount if side is Side.DEBIT else -amount)
        sides.add(side)
        legs.append(Leg(account, side, amount, currency))
    if len(sides) < 2:
        raise InvalidEntry("an entry needs at least one debit and one credit", field="postings", **where)
    unbalanced = {c: t for c, t in totals.items() if t != 0}
    if unbalanced:
        raise UnbalancedEntry("debits and credits differ in " + ", ".join(sorted(unbalanced)),
                              differences={c: str(t) for c, t in unbalanced.items()}, **where)
    return legs


def prepare_entry(spec: EntrySpec, now: dt.datetime, index: int | None = None) -> Write:
    """Validate an :class:`EntrySpec` and turn it into a :class:`Write`."""
    if not isinstance(spec, EntrySpec):
        raise InvalidEntry("expected an EntrySpec", **({} if index is None else {"index": index}))
    key = check_key(spec.idempotency_key)
    if not isinstance(spec.kind, str) or not spec.kind or len(spec.kind) > 64:
        raise InvalidEntry("kind must be a non-empty string of at most 64 characters", field="kind")
    if spec.kind in RESERVED_KINDS:
        raise InvalidEntry(f"kind {spec.kind!r} is reserved for the ledger's own entries", field="kind")
    legs = check_legs(spec.postings, index)
    effective_at = check_time(spec.effective_at, "effective_at")
    metadata = check_metadata(spec.metadata)
    description = str(spec.description or "")
    request_hash = fingerprint(["post", spec.kind, [[leg.account, leg.side.value, leg.amount, leg.currency]
                                                    for leg in legs], effective_at, description, metadata])
    entry = EntryRow(key, request_hash, spec.kind, effective_at or now, description, metadata, None, None)
    return Write(entry, legs)
