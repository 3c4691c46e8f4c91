"""Creating, checking and revoking API keys.

A key is ``sk_`` followed by 32 random bytes in URL-safe base64. It has 256 bits of
entropy, so a plain SHA-256 digest is a safe thing to store and look up (no salt
or slow hash needed, unlike passwords). Comparison happens in the database on the
digest, so no timing channel exposes the key.

The API caches keys it found valid for a few seconds (:mod:`settlement.auth.cache`);
:func:`revoke_key` clears that cache in its process when it commits.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from settlement.auth import cache
from settlement.auth.models import ApiKey
from settlement.db.types import utcnow
from settlement.errors import SettlementError, register


class Scope(enum.StrEnum):
    CHECKOUT = "checkout"   # the marketplace's checkout: payments, refunds, payouts
    FINANCE = "finance"     # finance staff: reconciliation, exceptions
    AUDITOR = "auditor"     # read everything, change nothing
    ADMIN = "admin"         # everything


@register
class Unauthenticated(SettlementError):
    code = "unauthenticated"
    status = 401
    title = "Missing or invalid API key"


@register
class Forbidden(SettlementError):
    code = "forbidden"
    status = 403
    title = "The API key lacks the scope this endpoint needs"


@register
class KeyNotFound(SettlementError):
    code = "api_key_not_found"
    status = 404
    title = "API key not found"


@register
class InvalidScope(SettlementError):
    code = "invalid_scope"
    status = 422
    title = "Unknown scope"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, name and scopes."""

    key_id: int
    name: str
    scopes: frozenset[Scope]

    def allows(self, allowed: Iterable[Scope]) -> bool:
        return Scope.ADMIN in self.scopes or bool(self.scopes & set(allowed))


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, name: str, scopes: Iterable[str]) -> tuple[str, ApiKey]:
    """Create a key; returns the key (shown once) and its stored record."""
    try:
        checked = sorted({Scope(s).value for s in scopes})
    except ValueError as exc:
        raise InvalidScope(f"{exc}; scopes are {', '.join(s.value for s in Scope)}") from None
    if not checked:
        raise InvalidScope("a key needs at least one scope")
    key = "sk_" + secrets.token_urlsafe(32)
    record = ApiKey(name=name, prefix=key[:10], digest=digest(key), scopes=checked, created_at=utcnow())
    session.add(record)
    session.flush()
    return key, record


def authenticate(session: Session, key: str | None) -> Principal:
    """The principal for a presented key; Unauthenticated if it is unknown or revoked."""
    if not key:
        raise Unauthenticated("send the API key as 'Authorization: Bearer <key>'")
    record = session.scalars(select(ApiKey).where(ApiKey.digest == digest(key))).first()
    if record is None or record.revoked_at is not None:
        raise Unauthenticated("the API key is unknown or revoked")
    return Principal(record.id, record.name, frozenset(Scope(s) for s in record.scopes))


def revoke_key(session: Session, key_id: int) -> ApiKey:
    """Revoke a key. This process stops accepting it when the transaction commits;
    other processes within :data:`settlement.auth.cache.DEFAULT_TTL_SECONDS`."""
    record = session.get(ApiKey, key_id)
    if record is None:
        raise KeyNotFound(f"no API key with id {key_id}", key_id=key_id)
    if record.revoked_at is None:
        record.revoked_at = utcnow()
    session.flush()
    # Cleared now and again at commit: a lookup that read the key before the commit
    # then cannot store it (see KeyCache.put).
    cache.keys.clear()
    event.listen(session, "after_commit", _forget_keys, once=True)
    return record


def _forget_keys(_session: Session) -> None:
    cache.keys.clear()


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))
