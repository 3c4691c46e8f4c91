"""Backend notifications (``backUrl`` POSTs) from the gateway: verify, check age, parse.

The gateway POSTs a form signed like every answer (signMethod 01, ``signPubKeyCert``)
and retries until the merchant answers HTTP 200. The rules, in the order applied:

1. the body is at most 64 KiB and a well-formed UTF-8 form (:class:`Malformed`);
2. it carries every field a notification has (:class:`Malformed`, naming them);
3. its signer certificate is trusted and its signature valid (:class:`SignatureInvalid`);
4. it is for our ``merId`` and in CNY (:class:`Malformed`);
5. its ``txnTime`` is not older than the configured window (:class:`ReplayedNotification`)
   nor more than five minutes in the future (:class:`Malformed`).

``notification_id`` is ``queryId:txnType``: the same for every retry of one event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from adapters.base import Malformed, Notification, ReplayedNotification, TxnStatus
from adapters.unionpay.constants import OUTCOME_UNKNOWN, RAIL, RespCode
from adapters.unionpay.messages import (
    MAX_NOTIFICATION_BYTES,
    STATUS_AFTER,
    currency_of,
    decode_form,
    parse_fen,
    parse_txn_time,
    require,
)
from adapters.unionpay.signing import SignerTrust

_REQUIRED = ("version", "signMethod", "merId", "orderId", "txnType", "txnTime", "txnAmt",
             "currencyCode", "queryId", "respCode")
_CLOCK_SKEW = dt.timedelta(minutes=5)
_FORM_TYPE = "application/x-www-form-urlencoded"


def status_of(txn_type: str, resp_code: str) -> TxnStatus:
    """The transaction's state that a message of ``txn_type`` answered ``resp_code``
    reports: the type's success state for 00, PENDING for 03/04/05, DECLINED otherwise."""
    if resp_code == RespCode.SUCCESS:
        status = STATUS_AFTER.get(txn_type)
        if status is None:
            raise Malformed(f"txnType {txn_type!r} is not one a notification reports", rail=RAIL)
        return status
    if resp_code in OUTCOME_UNKNOWN or resp_code == RespCode.ACCEPTED:
        return TxnStatus.PENDING
    return TxnStatus.DECLINED


class NotificationReader:
    """Parses notifications for one merchant. Stateless apart from its configuration,
    so thread-safe; deduplication by ``notification_id`` is the caller's job."""

    def __init__(self, trust: SignerTrust, mer_id: str, max_age: dt.timedelta) -> None:
        self._trust = trust
        self._mer_id = mer_id
        self._max_age = max_age

    def parse(self, headers: Mapping[str, str], body: bytes,
              now: dt.datetime | None = None) -> Notification:
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        if content_type and not content_type.lower().startswith(_FORM_TYPE):
            raise Malformed(f"notification content type {content_type!r} is not a form", rail=RAIL)
        form = decode_form(body, limit=MAX_NOTIFICATION_BYTES, what="notification")
        require(form, _REQUIRED, "notification")
        self._trust.verify_form(form, now)
        if form["merId"] != self._mer_id:
            raise Malformed(f"notification is for merchant {form['merId']}, not ours", rail=RAIL)
        currency = currency_of(form["currencyCode"])
        sent_at = parse_txn_time(form["txnTime"])
        moment = now or dt.datetime.now(dt.UTC)
        if moment - sent_at > self._max_age:
            raise ReplayedNotification(
                f"notification txnTime {form['txnTime']} is older than {self._max_age}", rail=RAIL,
                detail={"queryId": form["queryId"], "txnTime": form["txnTime"]})
        if sent_at - moment > _CLOCK_SKEW:
            raise Malformed(f"notification txnTime {form['txnTime']} is in the future", rail=RAIL)
        return Notification(
            rail=RAIL,
            notification_id=f"{form['queryId']}:{form['txnType']}",
            reference=form["orderId"],
            rail_reference=form.get("origQryId") or form["queryId"],
            status=status_of(form["txnType"], form["respCode"]),
            amount=parse_fen(form["txnAmt"]),
            currency=currency,
            occurred_at=sent_at,
            raw=form,
        )
