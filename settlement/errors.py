"""The root of every error the service raises on purpose.

Each subclass has a stable machine-readable ``code`` (it becomes the ``type`` of an
RFC 9457 problem document at the API edge) and the HTTP ``status`` a refusal maps
to. Expected refusals are never 500s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class SettlementError(Exception):
    """A refusal with a stable code.

    ``detail`` holds machine-readable facts (which account, which field...).
    ``durable`` is set when the refusal itself was recorded in the session (the
    ledger remembers business refusals under their idempotency key): the unit of
    work then commits before re-raising, so the refusal is kept. Refusals are raised
    before the refused operation writes anything, so nothing of it is committed.
    """

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Request refused"

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail: dict[str, Any] = detail
        self.replayed = False
        self.durable = False

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "detail": dict(self.detail)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r})"


_registry: dict[str, type[SettlementError]] = {}


def register(cls: type[SettlementError]) -> type[SettlementError]:
    """Record ``cls`` under its code, so a stored refusal can be raised again as the
    same class. Codes are unique across the service."""
    existing = _registry.get(cls.code)
    if existing is not None and existing is not cls:
        raise RuntimeError(f"error code {cls.code!r} used by both {existing.__name__} and {cls.__name__}")
    _registry[cls.code] = cls
    return cls


def error_class(code: str) -> type[SettlementError]:
    return _registry.get(code, SettlementError)


def all_error_classes() -> Mapping[str, type[SettlementError]]:
    return dict(_registry)
