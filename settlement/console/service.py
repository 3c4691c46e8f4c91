"""Console sessions: sign in with an API key, find the session of a request, sign out.

A session token is ``secrets.token_urlsafe(32)`` (256 bits); only its SHA-256 digest
is stored, so a copy of the database does not let anyone in. Each request checks the
session (not ended, not past ``expires_at``, used within the idle timeout) and its
key (not revoked) and reads the key's scopes afresh. ``last_seen_at`` is written at
most once a minute, so browsing does not write on every page.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from settlement.auth.models import ApiKey
from settlement.auth.service import Scope, authenticate
from settlement.config import Settings
from settlement.console.errors import CsrfRefused, NotSignedIn, ReadOnly, SignInRefused
from settlement.console.models import ConsoleSession
from settlement.db.types import utcnow

#: Scopes that may sign in (admin passes everything).
CONSOLE_SCOPES = frozenset({Scope.FINANCE, Scope.AUDITOR})
#: Scopes that may act on the exceptions queue.
ACTING_SCOPES = frozenset({Scope.FINANCE})
TOUCH_EVERY = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Viewer:
    """Who is signed in: the session, its key, and what the key may do."""

    session_id: int
    key_id: int
    name: str
    scopes: frozenset[Scope]
    csrf_token: str
    expires_at: dt.datetime

    @property
    def can_act(self) -> bool:
        """Finance (or admin) keys act; auditor keys only read."""
        return Scope.ADMIN in self.scopes or bool(self.scopes & ACTING_SCOPES)

    @property
    def actor(self) -> str:
        """Who acts, as recorded on reconciliation actions: the same string the API
        records for this key, so maker-checker sees one person whichever way they come."""
        return f"key:{self.key_id}:{self.name}"

    @property
    def role(self) -> str:
        if Scope.ADMIN in self.scopes:
            return "admin"
        return "finance" if self.can_act else "auditor"

    def require_actor(self) -> None:
        if not self.can_act:
            raise ReadOnly("an auditor key can look at everything here but change nothing", role=self.role)

    def check_csrf(self, token: str | None) -> None:
        if not token or not hmac.compare_digest(token.encode(), self.csrf_token.encode()):
            raise CsrfRefused("the form's security token is missing or does not belong to this session")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_in(session: Session, settings: Settings, api_key: str, *, now: dt.datetime | None = None
            ) -> tuple[str, ConsoleSession]:
    """Exchange an API key for a new session; returns the session token (for the
    cookie) and the stored session. Unknown or revoked keys are ``unauthenticated``;
    keys without the finance or auditor scope are ``console_sign_in_refused``."""
    principal = authenticate(session, api_key.strip() or None)
    if not principal.allows(CONSOLE_SCOPES):
        raise SignInRefused("the console is for finance and auditor keys; this key has "
                            f"{', '.join(sorted(s.value for s in principal.scopes))}")
    moment = now or utcnow()
    token = secrets.token_urlsafe(32)
    row = ConsoleSession(token_digest=digest(token), csrf_token=secrets.token_urlsafe(32), key_id=principal.key_id,
                         created_at=moment, expires_at=moment + dt.timedelta(seconds=settings.console_session_seconds),
                         last_seen_at=moment)
    session.add(row)
    session.flush()
    return token, row


def viewer(session: Session, settings: Settings, token: str | None, *, now: dt.datetime | None = None) -> Viewer:
    """The viewer of a request's session token; ``console_not_signed_in`` (with the
    reason) when there is none or it ended."""
    if not token:
        raise NotSignedIn("sign in with a finance or auditor API key", reason="no_session")
    found = session.execute(select(ConsoleSession, ApiKey).join(ApiKey, ApiKey.id == ConsoleSession.key_id)
                            .where(ConsoleSession.token_digest == digest(token))).first()
    if found is None:
        raise NotSignedIn("this session is unknown; sign in again", reason="unknown")
    row, key = found
    moment = now or utcnow()
    if row.ended_at is not None:
        raise NotSignedIn("you signed out; sign in again", reason="signed_out")
    if key.revoked_at is not None:
        raise NotSignedIn("the API key of this session was revoked", reason="revoked")
    if moment >= row.expires_at:
        raise NotSignedIn("your session expired; sign in again", reason="expired")
    if moment - row.last_seen_at >= dt.timedelta(seconds=settings.console_idle_seconds):
        raise NotSignedIn("your session ended after a while without activity; sign in again", reason="idle")
    if moment - row.last_seen_at >= TOUCH_EVERY:
        session.execute(update(ConsoleSession).where(ConsoleSession.id == row.id).values(last_seen_at=moment))
    return Viewer(row.id, key.id, key.name, frozenset(Scope(s) for s in key.scopes), row.csrf_token, row.expires_at)


def sign_out(session: Session, session_id: int, *, now: dt.datetime | None = None) -> None:
    """End the session (a second sign-out changes nothing)."""
    session.execute(update(ConsoleSession).where(ConsoleSession.id == session_id, ConsoleSession.ended_at.is_(None))
                    .values(ended_at=now or utcnow()))
