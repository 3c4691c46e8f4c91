"""HTTP idempotency: the ``Idempotency-Key`` header of money-moving POSTs.

A key belongs to the API key that sent it (unique on ``(api_key_id, key)``, a
PostgreSQL unique constraint). What "the same request" means: the same method,
path and JSON body (compared canonically: key order and whitespace do not matter).

* First request: the key is claimed (an ``in_flight`` row) in the operation's first
  unit of work, and the final response (2xx, or a 4xx refusal) is stored in its
  last unit of work, atomically with the payment's changes.
* Same key, same request, done: the stored status and body are replayed with
  ``Idempotent-Replayed: true``.
* Same key, another request: 409 ``idempotency_conflict``.
* Same key while the first is still in flight: 409 ``request_in_flight``.
* A 5xx, or a refusal before anything was stored, frees the key (nothing happened).
* A request that died (its lease ran out) after it created its resource: a retry
  answers the resource as it is now (the janitor settles what the dead request left
  in flight); one that died before creating anything is simply run again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    TextClause,
    UniqueConstraint,
    bindparam,
    select,
    text,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from settlement.api.problems import problem
from settlement.db import SessionFactory, unit_of_work
from settlement.db.base import Base
from settlement.db.direct import Direct
from settlement.db.session import first_row
from settlement.db.types import BigId, JsonDoc, UTCDateTime, utcnow
from settlement.errors import SettlementError, register
from settlement.ledger.errors import IdempotencyConflict

REPLAYED = "Idempotent-Replayed"
JSON = "application/json"


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("api_key_id", "key", name="uq_idempotency_keys_api_key_id_key"),
        CheckConstraint("state IN ('in_flight', 'done')", name="state"),
        Index("ix_idempotency_keys_completed", "completed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    api_key_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("api_keys.id"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(500))
    #: in_flight | done
    state: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(100))
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: What the request created or changed (``payment``, ``refund``, ``payout``).
    resource_type: Mapped[str | None] = mapped_column(String(32))
    resource_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    locked_until: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    extra: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)


@register
class RequestInFlight(SettlementError):
    """A request with this Idempotency-Key is still being processed: retry later."""

    code = "request_in_flight"
    status = 409
    title = "A request with this Idempotency-Key is in progress"


@register
class IdempotencyKeyRequired(SettlementError):
    """Every POST that moves money needs an ``Idempotency-Key`` header."""

    code = "idempotency_key_required"
    status = 400
    title = "Idempotency-Key header required"


class _Replay(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__("replay")
        self.response = response


class _Recover(Exception):
    def __init__(self, row_id: int, resource: str, resource_id: int) -> None:
        super().__init__("recover")
        self.row_id, self.resource, self.resource_id = row_id, resource, resource_id


Render = Callable[[Any], tuple[int, BaseModel]]
Recover = Callable[[Session, str, int], BaseModel]


def fingerprint(method: str, path: str, body: bytes) -> str:
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode() if body else b""
    except (ValueError, UnicodeDecodeError):
        canonical = body
    return hashlib.sha256(method.encode() + b"\n" + path.encode() + b"\n" + canonical).hexdigest()


def _timed(sql: str, *names: str) -> TextClause:
    """SQL text whose time parameters go through UTCDateTime (SQLite stores naive UTC)."""
    return text(sql).bindparams(*(bindparam(name, type_=UTCDateTime()) for name in names))


_CLAIM = _timed(
    "INSERT INTO idempotency_keys (api_key_id, key, request_hash, method, path, state, created_at, locked_until, "
    "resource_type, resource_id, extra) VALUES (:a, :k, :h, :m, :p, 'in_flight', :now, :until, :rt, :ri, '{}') "
    "ON CONFLICT (api_key_id, key) DO NOTHING RETURNING id", "now", "until")
# The same claim for PostgreSQL's driver, sent by _claim with the transaction's BEGIN.
_PG_CLAIM = (
    "INSERT INTO idempotency_keys (api_key_id, key, request_hash, method, path, state, created_at, locked_until, "
    "resource_type, resource_id, extra) VALUES (%(a)s, %(k)s, %(h)s, %(m)s, %(p)s, 'in_flight', %(now)s, "
    "%(until)s, %(rt)s, %(ri)s, '{}') ON CONFLICT (api_key_id, key) DO NOTHING RETURNING id")


def _claim(session: Session, params: dict[str, Any]) -> int | None:
    """Claim the key: the row's id, None if the key was already there.

    It is the first statement of the request's transaction. On PostgreSQL it goes in
    pipeline mode, so psycopg sends the transaction's BEGIN in the same round trip
    instead of waiting for it first."""
    if session.get_bind().dialect.name != "postgresql":
        found = session.execute(_CLAIM, params).scalar()
        return None if found is None else int(found)
    row = first_row(session, _PG_CLAIM, params)
    return None if row is None else int(row[0])


_DONE = Direct(_timed("UPDATE idempotency_keys SET state = 'done', status_code = :s, content_type = :c, "
                      "response_body = :b, completed_at = :now WHERE id = :id", "now"))
_BIND = Direct(text("UPDATE idempotency_keys SET resource_type = :t, resource_id = :r WHERE id = :id"))
_REFUSED = _timed(
    "INSERT INTO idempotency_keys (api_key_id, key, request_hash, method, path, state, status_code, content_type, "
    "response_body, created_at, locked_until, completed_at, extra) VALUES (:a, :k, :h, :m, :p, 'done', :s, :c, "
    ":b, :now, :now, :now, '{}') ON CONFLICT (api_key_id, key) DO UPDATE SET state = 'done', "
    "status_code = excluded.status_code, content_type = excluded.content_type, "
    "response_body = excluded.response_body, completed_at = excluded.completed_at "
    "WHERE idempotency_keys.state = 'in_flight' AND idempotency_keys.request_hash = excluded.request_hash",
    "now")
_TAKE_OVER = _timed("UPDATE idempotency_keys SET locked_until = :until WHERE id = :id AND locked_until = :old",
                    "until", "old")


@dataclass
class Idempotency:
    """One request's Idempotency-Key (None when the client sent none), and the hooks
    a flow calls to claim it and to store the response."""

    key: str | None
    request_hash: str
    method: str
    path: str
    factory: SessionFactory
    lease: dt.timedelta
    api_key_id: int = 0
    render: Render | None = None
    row_id: int | None = None
    response: Response | None = field(default=None, repr=False)

    # -- the flow's hooks ---------------------------------------------------------

    def begin(self, session: Session, resource: tuple[str, int] | None = None) -> None:
        """Claim the key; ``resource`` is what the request will change when it is known
        already (it is then stored with the claim: no :meth:`bind` needed)."""
        if self.key is None:
            return
        now = utcnow()
        params = {"a": self.api_key_id, "k": self.key, "h": self.request_hash, "m": self.method, "p": self.path,
                  "now": now, "until": now + self.lease, "rt": resource[0] if resource else None,
                  "ri": resource[1] if resource else None}
        claimed = _claim(session, params)
        if claimed is not None:
            self.row_id = int(claimed)
            return
        row = session.scalars(select(IdempotencyRecord).where(IdempotencyRecord.api_key_id == self.api_key_id,
                                                              IdempotencyRecord.key == self.key)).one()
        if row.request_hash != self.request_hash:
            raise IdempotencyConflict(f"Idempotency-Key {self.key!r} was used for a different request",
                                      idempotency_key=self.key)
        if row.state == "done":
            raise _Replay(_response(row.status_code or 200, row.content_type, row.response_body, replayed=True))
        if row.locked_until > now:
            raise RequestInFlight(f"a request with Idempotency-Key {self.key!r} is in progress",
                                  idempotency_key=self.key)
        if row.resource_type is not None:
            raise _Recover(row.id, row.resource_type, int(row.resource_id or 0))
        # The request that held the key died before creating anything: run again.
        taken = _rowcount(session.execute(_TAKE_OVER, {"until": now + self.lease, "id": row.id,
                                                       "old": row.locked_until}))
        if not taken:
            raise RequestInFlight(f"a request with Idempotency-Key {self.key!r} is in progress",
                                  idempotency_key=self.key)
        self.row_id = row.id
        if resource is not None:
            self.bind(session, *resource)

    def bind(self, session: Session, resource: str, resource_id: int) -> None:
        if self.row_id is not None:
            _BIND.rows(session, {"t": resource, "r": resource_id, "id": self.row_id})

    def finish(self, session: Session, result: object, error: SettlementError | None) -> None:
        if error is not None and error.status >= 500:
            if self.row_id is not None:
                session.execute(text("DELETE FROM idempotency_keys WHERE id = :id"), {"id": self.row_id})
            return
        if error is not None:
            response: Response = problem_response(error, self.path)
        else:
            assert self.render is not None
            status, model = self.render(result)
            response = Response(model.model_dump_json().encode(), status_code=status, media_type=JSON)
        if self.row_id is not None:
            _DONE.rows(session, {"s": response.status_code, "c": response.media_type, "b": bytes(response.body),
                                 "now": utcnow(), "id": self.row_id})
        self.response = response

    def discard(self) -> None:
        # The transaction that stored the response was rolled back: it is no answer.
        self.response = None

    # -- running a request --------------------------------------------------------

    def run(self, api_key_id: int, flow: Callable[[Idempotency], object], render: Render, *,
            recover: Recover | None = None, required: bool = True) -> Response:
        """Run ``flow`` (which calls the hooks) under this key and answer."""
        if self.key is None and required:
            raise IdempotencyKeyRequired("send an Idempotency-Key header with every request that moves money")
        self.api_key_id, self.render = api_key_id, render
        try:
            flow(self)
        except _Replay as replay:
            return replay.response
        except _Recover as lost:
            return self._recover(lost, recover)
        except SettlementError as error:
            if self.response is not None:
                return self.response
            if error.status >= 500 or self.key is None:
                self._release()
                raise
            return self._refused(error)
        except BaseException:
            self._release()
            raise
        assert self.response is not None, "the flow did not finish the request"
        return self.response

    def _refused(self, error: SettlementError) -> Response:
        response = problem_response(error, self.path)
        now = utcnow()
        with unit_of_work(self.factory) as session:
            session.execute(_REFUSED, {"a": self.api_key_id, "k": self.key, "h": self.request_hash, "m": self.method,
                                       "p": self.path, "s": response.status_code, "c": response.media_type,
                                       "b": bytes(response.body), "now": now})
        return response

    def _release(self) -> None:
        if self.row_id is None:
            return
        with unit_of_work(self.factory) as session:
            session.execute(text("DELETE FROM idempotency_keys WHERE id = :id AND state = 'in_flight' "
                                 "AND resource_type IS NULL"), {"id": self.row_id})

    def _recover(self, lost: _Recover, recover: Recover | None) -> Response:
        if recover is None:
            raise RequestInFlight(f"a request with Idempotency-Key {self.key!r} did not finish",
                                  idempotency_key=self.key)
        with unit_of_work(self.factory) as session:
            model = recover(session, lost.resource, lost.resource_id)
            response = Response(model.model_dump_json().encode(), status_code=200, media_type=JSON)
            _DONE.rows(session, {"s": 200, "c": JSON, "b": bytes(response.body), "now": utcnow(), "id": lost.row_id})
        return response


def problem_response(error: SettlementError, path: str) -> Response:
    return problem(error.status, error.code, error.title, error.message, instance=path, errors=error.detail or None)


def _response(status: int, content_type: str | None, body: bytes | None, *, replayed: bool) -> Response:
    headers = {REPLAYED: "true"} if replayed else None
    return Response(bytes(body or b""), status_code=status, media_type=content_type or JSON, headers=headers)


KeyHeader = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
    description="Required on every POST that moves money: retrying with the same key and body replays the "
                "first answer; another body with the same key is 409 idempotency_conflict.")]


async def idempotency(request: Request, idempotency_key: KeyHeader = None) -> Idempotency:
    """The request's Idempotency-Key and fingerprint (the body is read here, once)."""
    body = await request.body()
    settings = request.app.state.settings
    return Idempotency(key=idempotency_key, request_hash=fingerprint(request.method, request.url.path, body),
                       method=request.method, path=request.url.path, factory=request.app.state.factory,
                       lease=dt.timedelta(seconds=settings.idempotency_lease_seconds))


def purge(session: Session, retention_hours: int) -> int:
    """Delete finished keys older than ``retention_hours``; returns how many."""
    cutoff = utcnow() - dt.timedelta(hours=retention_hours)
    result = session.execute(_timed("DELETE FROM idempotency_keys WHERE state = 'done' AND completed_at < :cutoff",
                                    "cutoff"), {"cutoff": cutoff})
    return _rowcount(result)


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
