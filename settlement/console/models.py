"""Console sessions: a signed-in API key, for the finance staff's web console.

Only a SHA-256 digest of the session token is stored (the token is 256 random bits,
like an API key, so a plain digest is safe to look up); the browser holds the token
in an HttpOnly, SameSite=Strict cookie. ``csrf_token`` is the synchronizer token
every form of the session carries. A session ends at ``expires_at`` (absolute), after
``console_idle_seconds`` without a request, at sign-out (``ended_at``), or when its
API key is revoked.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Identity, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from settlement.db.base import Base
from settlement.db.types import BigId, UTCDateTime


class ConsoleSession(Base):
    __tablename__ = "console_sessions"
    __table_args__ = (
        Index("uq_console_sessions_token_digest", "token_digest", unique=True),
        Index("ix_console_sessions_key_id", "key_id"),
        CheckConstraint("expires_at > created_at", name="lifetime"),
    )

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(64))
    csrf_token: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("api_keys.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
