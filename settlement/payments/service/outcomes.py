"""What a rail's answer means for one attempt.

A rail call ends in one of four ways:

* ``succeeded``: the operation happened (``result`` says what it moved);
* ``failed``: it did not happen and will not (a decline, an unsupported request, a
  rail that said it did nothing);
* ``pending``: the rail accepted it and will tell later (UnionPay respCode 05,
  Alipay waiting for the buyer);
* ``unknown``: the answer was lost or cannot be trusted (timeout, bad signature,
  malformed answer): only :meth:`PaymentRail.query` can tell.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass

from adapters.base import (
    Declined,
    Malformed,
    RailError,
    RailResult,
    RailTimeout,
    SignatureInvalid,
    TxnStatus,
    Unsupported,
)
from adapters.base import RailUnavailable as AdapterUnavailable

log = logging.getLogger("settlement.payments")


class Kind(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PENDING = "pending"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    result: RailResult | None = None
    code: str = ""
    message: str = ""
    rail_code: str = ""

    @property
    def error_detail(self) -> dict[str, str]:
        return {"rail_code": self.rail_code} if self.rail_code else {}


def call(operation: Callable[[], RailResult]) -> Outcome:  # noqa: PLR0911 - one return per kind of answer
    """Run one rail operation and classify its end."""
    try:
        result = operation()
    except Declined as exc:
        return Outcome(Kind.FAILED, code="rail_declined", message=exc.message, rail_code=exc.rail_code)
    except Unsupported as exc:
        return Outcome(Kind.FAILED, code="rail_unsupported", message=exc.message)
    except AdapterUnavailable as exc:
        return Outcome(Kind.FAILED, code="rail_unavailable", message=exc.message)
    except (RailTimeout, SignatureInvalid, Malformed) as exc:
        log.warning("rail answer lost or untrusted (%s): %s", exc.code, exc.message)
        return Outcome(Kind.UNKNOWN, code=exc.code, message=exc.message)
    except RailError as exc:
        log.warning("rail error %s: %s", exc.code, exc.message)
        return Outcome(Kind.UNKNOWN, code=exc.code, message=exc.message)
    if result.status is TxnStatus.PENDING:
        return Outcome(Kind.PENDING, result)
    if result.status in (TxnStatus.DECLINED, TxnStatus.FAILED):
        return Outcome(Kind.FAILED, result, code="rail_declined", message="the rail declined",
                       rail_code=result.response_code)
    return Outcome(Kind.SUCCEEDED, result)


def from_query(result: RailResult, operation: str, *, sale: bool = False) -> Outcome:
    """The outcome of an operation as :meth:`PaymentRail.query` reports it.

    ``NOT_FOUND`` means the rail never processed the operation (it failed, and a new
    attempt may be made); ``DECLINED``/``FAILED`` a refusal; ``PENDING`` still waiting.
    For an authorization, ``VOIDED`` means the rail released it already (failed:
    nothing is held). Any other state means the operation happened."""
    status = result.status
    if status is TxnStatus.NOT_FOUND:
        return Outcome(Kind.FAILED, result, code="rail_not_processed",
                       message="the rail has no record of the operation")
    if status in (TxnStatus.DECLINED, TxnStatus.FAILED):
        return Outcome(Kind.FAILED, result, code="rail_declined", message="the rail declined",
                       rail_code=result.response_code)
    if status is TxnStatus.PENDING:
        return Outcome(Kind.PENDING, result)
    if operation == "authorize" and status is TxnStatus.VOIDED:
        return Outcome(Kind.FAILED, result, code="rail_voided", message="the rail released the authorization")
    if operation == "authorize" and not sale and status is TxnStatus.CAPTURED:
        log.warning("rail reports authorization %s captured; booking it as authorized", result.reference)
    return Outcome(Kind.SUCCEEDED, result)
