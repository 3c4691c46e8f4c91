"""The UnionPay rail client: ACP 5.1.0 messages over HTTPS forms.

Which message each SPI operation sends (``txnType``/``txnSubType``/``bizType``):

* ``authorize``: 01/01/000301 purchase when ``capture``, else 02/01/000301
  pre-authorization; the card number travels encrypted in ``accNo``.
* ``capture``: 03/00 pre-authorization completion naming ``origQryId``. Real UnionPay
  allows one completion, which closes the hold. Several partial completions are our
  extension: a completion with ``final=False`` sends ``reserved={moreCompletions=Y}``
  and leaves the rest held; a final one releases the rest, as UnionPay does.
* ``void``: queries the original first, then 32/00 pre-authorization cancel (the
  amount is the uncompleted rest) or 31/00 cancel of a same-day purchase (the
  full amount).
* ``refund``: 04/00 naming ``origQryId``; several partial refunds up to what was captured.
* ``query``: 00/00/000000 queryTrans by ``orderId`` (our reference).
* ``payout``: 12/00/000401 代付 to a card or account number.

Every answer must be signed by a trusted gateway certificate and belong to the
request (same ``merId``, ``orderId`` and ``txnType``). ``respCode`` 00 succeeds, 05
(accepted) returns ``TxnStatus.PENDING`` with the outcome to follow by notification;
every other code raises as :func:`~adapters.unionpay.messages.raise_for_code` says.

Our references become ``orderId``: ACP allows 8 to 40 letters and digits; the ZM file
holds 32, so references are limited to 8-32 ASCII letters and digits.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Iterator, Mapping
from typing import BinaryIO

import httpx

from adapters.base import (
    AuthorizeRequest,
    Capability,
    CaptureRequest,
    Malformed,
    MethodKind,
    Notification,
    NotificationAck,
    PayoutRequest,
    QueryRequest,
    RailResult,
    RailTimeout,
    RailUnavailable,
    RecordError,
    RefundRequest,
    SettlementRecord,
    TxnStatus,
    Unsupported,
    VoidRequest,
)
from adapters.unionpay import files, transfer
from adapters.unionpay.config import UnionPayConfig
from adapters.unionpay.constants import (
    ACCESS_TYPE_MERCHANT,
    CALENDAR,
    CURRENCY,
    CURRENCY_CODE,
    ENCODING,
    FEES,
    RAIL,
    SIGN_METHOD_RSA,
    VERSION,
    BizType,
    RespCode,
    TxnType,
)
from adapters.unionpay.messages import (
    MAX_ANSWER_BYTES,
    STATUS_AFTER,
    beijing_now,
    decode_form,
    encode_form,
    fen_text,
    format_txn_time,
    parse_fen,
    raise_for_code,
    require,
)
from adapters.unionpay.notifications import NotificationReader, status_of
from adapters.unionpay.signing import SignerTrust, cert_id, encrypt_sensitive, sign_form

_REFERENCE = re.compile(r"[A-Za-z0-9]{8,32}")
_ANSWER_FIELDS = ("version", "signMethod", "txnType", "respCode")
_FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"}
_MAX_FILE_ANSWER_BYTES = 512 * 1024 * 1024


class UnionPayRail:
    """A client of one UnionPay merchant account. Thread-safe: every call builds its own
    messages; the HTTP client and the certificate cache are safe to share."""

    name = RAIL
    currencies = frozenset({CURRENCY})
    capabilities = (Capability.AUTHORIZE | Capability.SALE | Capability.PARTIAL_CAPTURE
                    | Capability.MULTIPLE_CAPTURE | Capability.VOID | Capability.REFUND
                    | Capability.PARTIAL_REFUND | Capability.QUERY | Capability.PAYOUT
                    | Capability.NOTIFICATIONS)
    fee_schedule = FEES
    calendar = CALENDAR

    def __init__(self, config: UnionPayConfig) -> None:
        self._config = config
        self._cert_id = cert_id(config.merchant_cert)
        self._encrypt_cert_id = cert_id(config.encrypt_cert)
        self._trust = SignerTrust(config.roots, config.gateway_organization)
        self._notifications = NotificationReader(self._trust, config.mer_id, config.notification_max_age)
        self._http = httpx.Client(timeout=config.timeout)

    def close(self) -> None:
        self._http.close()

    # -- money movements ------------------------------------------------------------

    def authorize(self, request: AuthorizeRequest) -> RailResult:
        """Pre-authorize (02) or, with ``capture``, purchase (01) ``amount`` on a card.
        Returns AUTHORIZED or CAPTURED with ``rail_reference`` = ``queryId``; PENDING
        for respCode 05. Raises :class:`Declined` with the respCode on refusal."""
        self._check(request.reference, request.currency)
        pan = request.method.pan
        if request.method.kind is not MethodKind.CARD or not pan:
            raise Unsupported("UnionPay authorizes cards: a card number is required", rail=RAIL)
        txn_type = TxnType.PURCHASE if request.capture else TxnType.PREAUTH
        form = self._form(txn_type, "01", BizType.NO_REDIRECT, request.reference)
        form.update(txnAmt=fen_text(request.amount), currencyCode=CURRENCY_CODE,
                    backUrl=request.notify_url or self._config.notify_url,
                    accNo=encrypt_sensitive(self._config.encrypt_cert, pan),
                    encryptCertId=self._encrypt_cert_id)
        if request.method.expiry:
            form["customerInfo"] = self._customer_info({}, {"expired": request.method.expiry})
        form.update(self._sub_merchant(request.metadata))
        answer = self._send(self._config.back_trans_url, form, "authorize")
        return self._result(request.reference, request.amount, answer, STATUS_AFTER[txn_type],
                            answer.get("queryId", ""))

    def capture(self, request: CaptureRequest) -> RailResult:
        """Complete (03) ``amount`` of the pre-authorization ``rail_reference``; at most
        what is still held. ``final=False`` keeps the rest held for more completions."""
        self._check(request.reference, request.currency)
        form = self._follow_up(TxnType.PREAUTH_COMPLETE, request.reference, request.rail_reference,
                               request.amount)
        if not request.final:
            form["reserved"] = "{moreCompletions=Y}"
        answer = self._send(self._config.back_trans_url, form, "capture")
        return self._result(request.reference, request.amount, answer, TxnStatus.CAPTURED,
                            request.rail_reference)

    def void(self, request: VoidRequest) -> RailResult:
        """Release a pre-authorization's uncompleted rest (32, ``amount`` = that rest) or
        cancel a same-day purchase in full (31). Returns VOIDED; what was completed
        before a 32 stays captured. Raises :class:`Declined` (35) when the original
        cannot be voided any more."""
        self._check(request.reference, request.currency)
        original = self._query({"queryId": request.rail_reference})
        raise_for_code(original, "void")
        kinds = {TxnType.PREAUTH: TxnType.PREAUTH_CANCEL, TxnType.PURCHASE: TxnType.PURCHASE_CANCEL}
        txn_type = kinds.get(original["txnType"])
        if txn_type is None:
            raise Unsupported(f"a txnType {original['txnType']} transaction cannot be voided", rail=RAIL)
        form = self._follow_up(txn_type, request.reference, request.rail_reference, request.amount)
        answer = self._send(self._config.back_trans_url, form, "void")
        return self._result(request.reference, request.amount, answer, TxnStatus.VOIDED,
                            request.rail_reference)

    def refund(self, request: RefundRequest) -> RailResult:
        """Refund (04) ``amount`` of what ``rail_reference`` captured and has not yet
        refunded; several partial refunds are allowed. Returns REFUNDED."""
        self._check(request.reference, request.currency)
        form = self._follow_up(TxnType.REFUND, request.reference, request.rail_reference, request.amount)
        answer = self._send(self._config.back_trans_url, form, "refund")
        return self._result(request.reference, request.amount, answer, TxnStatus.REFUNDED,
                            request.rail_reference)

    def payout(self, request: PayoutRequest) -> RailResult:
        """Pay ``amount`` out (代付, 12/000401) to the card or account number
        ``destination``. Returns CAPTURED once paid, PENDING for respCode 05; the final
        state also arrives by notification and through :meth:`query`."""
        self._check(request.reference, request.currency)
        destination = request.destination.replace(" ", "")
        if not destination.isdigit():
            raise Malformed("payout destination must be a card or account number", rail=RAIL)
        form = self._form(TxnType.PAYOUT, "00", BizType.PAYOUT, request.reference)
        form.update(txnAmt=fen_text(request.amount), currencyCode=CURRENCY_CODE,
                    backUrl=self._config.notify_url,
                    accNo=encrypt_sensitive(self._config.encrypt_cert, destination),
                    encryptCertId=self._encrypt_cert_id)
        if request.beneficiary_name:
            form["customerInfo"] = self._customer_info({"customerNm": request.beneficiary_name}, {})
        answer = self._send(self._config.back_trans_url, form, "payout")
        return self._result(request.reference, request.amount, answer, TxnStatus.CAPTURED,
                            answer.get("queryId", ""))

    def query(self, request: QueryRequest) -> RailResult:
        """The gateway's truth about the operation named ``reference`` (its ``orderId``):
        the success state of its txnType when ``origRespCode`` is 00, PENDING for
        03/04/05, DECLINED (amount 0) otherwise, NOT_FOUND for respCode 34.
        ``rail_reference`` is the original transaction's ``queryId``. (queryTrans asks
        for the original ``txnTime`` too; we send the query's own time, which the
        simulator accepts.)

        queryTrans reports the outcome of the message it names, not what later
        messages did to the transaction: a pre-authorization voided since still
        answers AUTHORIZED (query the void's own reference), a purchase refunded since
        CAPTURED. ``operation`` is not needed and ignored."""
        answer = self._query({"orderId": request.reference})
        if answer["respCode"] == RespCode.NOT_FOUND:
            return RailResult(rail=RAIL, reference=request.reference,
                              rail_reference=request.rail_reference or "", status=TxnStatus.NOT_FOUND,
                              amount=0, currency=CURRENCY, response_code=RespCode.NOT_FOUND, raw=answer)
        raise_for_code(answer, "query")
        require(answer, ("origRespCode", "queryId", "txnAmt"), "query answer")
        status = status_of(answer["txnType"], answer["origRespCode"])
        # A declined message moved nothing, whatever txnAmt it asked for.
        moved = 0 if status is TxnStatus.DECLINED else parse_fen(answer["txnAmt"])
        return RailResult(rail=RAIL, reference=request.reference,
                          rail_reference=answer.get("origQryId") or answer["queryId"],
                          status=status, amount=moved, currency=CURRENCY,
                          response_code=answer["origRespCode"], rrn=_trace(answer), raw=answer)

    # -- notifications and files ----------------------------------------------------

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        """Verify and parse a backend notification; see :mod:`.notifications` for the
        checks and the errors each raises."""
        return self._notifications.parse(headers, body)

    def notification_ack(self, notification: Notification | None) -> NotificationAck:
        """HTTP 200 ``ok`` stops the gateway's retries; anything else makes it retry."""
        if notification is None:
            return NotificationAck(status_code=400, body=b"fail")
        return NotificationAck(status_code=200, body=b"ok")

    def parse_settlement_file(self, stream: BinaryIO) -> Iterator[SettlementRecord | RecordError]:
        """Stream a ZM file (see :mod:`.files`). The clearing date comes from each line,
        or from the file name (``INN<yymmdd>..ZM_<merId>``) when lines lack it."""
        name = getattr(stream, "name", None)
        default = files.settlement_date_from_name(name) if isinstance(name, str) else None
        return files.parse_zm(stream, settlement_date=default)

    def download_settlement_file(self, settle_date: dt.date) -> bytes:
        """The ZM file for clearing date ``settle_date`` through fileTransfer (76/01).
        Raises :class:`Declined` 98 when the gateway has no file for that date."""
        if not self._config.file_trans_url:
            raise Unsupported("no file_trans_url configured", rail=RAIL)
        form = self._form(TxnType.FILE_DOWNLOAD, "01", BizType.NONE, None)
        form.update(settleDate=settle_date.strftime("%m%d"), fileType="00")
        answer = self._send(self._config.file_trans_url, form, "file download", _MAX_FILE_ANSWER_BYTES)
        raise_for_code(answer, "file download")
        require(answer, ("fileContent",), "file download answer")
        return transfer.unpack_zm(answer["fileContent"], limit=_MAX_FILE_ANSWER_BYTES)

    def front_form(self, request: AuthorizeRequest, front_url: str = "") -> tuple[str, dict[str, str]]:
        """The signed form a buyer's browser POSTs to frontTransReq (bizType 000201) to
        pay without giving us the card number: (action URL, fields)."""
        self._check(request.reference, request.currency)
        if not self._config.front_trans_url:
            raise Unsupported("no front_trans_url configured", rail=RAIL)
        txn_type = TxnType.PURCHASE if request.capture else TxnType.PREAUTH
        form = self._form(txn_type, "01", BizType.B2C_GATEWAY, request.reference)
        form.update(txnAmt=fen_text(request.amount), currencyCode=CURRENCY_CODE, frontUrl=front_url,
                    backUrl=request.notify_url or self._config.notify_url)
        form["signature"] = sign_form(form, self._config.merchant_key)
        return self._config.front_trans_url, form

    # -- plumbing -------------------------------------------------------------------

    def _check(self, reference: str, currency: str) -> None:
        if currency != CURRENCY:
            raise Unsupported(f"UnionPay here settles {CURRENCY} only, not {currency}", rail=RAIL)
        if not _REFERENCE.fullmatch(reference):
            raise Malformed(f"reference {reference!r} is not 8-32 letters and digits (orderId)",
                            rail=RAIL)

    def _form(self, txn_type: str, sub_type: str, biz_type: str, order_id: str | None) -> dict[str, str]:
        form = {"version": VERSION, "encoding": ENCODING, "signMethod": SIGN_METHOD_RSA,
                "certId": self._cert_id, "merId": self._config.mer_id,
                "accessType": ACCESS_TYPE_MERCHANT, "channelType": self._config.channel_type,
                "txnType": txn_type, "txnSubType": sub_type, "bizType": biz_type,
                "txnTime": format_txn_time(beijing_now())}
        if order_id is not None:
            form["orderId"] = order_id
        return form

    def _follow_up(self, txn_type: str, reference: str, rail_reference: str, amount: int) -> dict[str, str]:
        if not rail_reference:
            raise Malformed("rail_reference (origQryId) is required", rail=RAIL)
        form = self._form(txn_type, "00", BizType.NO_REDIRECT, reference)
        form.update(txnAmt=fen_text(amount), currencyCode=CURRENCY_CODE, origQryId=rail_reference,
                    backUrl=self._config.notify_url)
        return form

    def _customer_info(self, plain: Mapping[str, str], sensitive: Mapping[str, str]) -> str:
        """``customerInfo``: base64 of ``{k=v&...}``, sensitive values inside
        ``encryptedInfo`` encrypted to the gateway."""
        fields = dict(plain)
        if sensitive:
            secret = "&".join(f"{k}={v}" for k, v in sensitive.items())
            fields["encryptedInfo"] = encrypt_sensitive(self._config.encrypt_cert, secret)
        text = "{" + "&".join(f"{k}={v}" for k, v in fields.items()) + "}"
        return base64.b64encode(text.encode("utf-8")).decode("ascii")

    @staticmethod
    def _sub_merchant(metadata: Mapping[str, str]) -> dict[str, str]:
        """Platform merchants name the seller as the sub-merchant (二级商户)."""
        out = {}
        if metadata.get("sub_merchant_id"):
            out["subMerId"] = metadata["sub_merchant_id"]
        if metadata.get("sub_merchant_name"):
            out["subMerName"] = metadata["sub_merchant_name"]
            out["subMerAbbr"] = metadata.get("sub_merchant_abbr") or metadata["sub_merchant_name"]
        return out

    def _query(self, keys: Mapping[str, str]) -> dict[str, str]:
        form = self._form(TxnType.QUERY, "00", BizType.NONE, None)
        form.update(keys)
        return self._send(self._config.single_query_url, form, "query")

    def _send(self, url: str, form: dict[str, str], operation: str,
              limit: int = MAX_ANSWER_BYTES) -> dict[str, str]:
        """Sign, POST, read at most ``limit`` bytes, verify and bind the answer."""
        form["signature"] = sign_form(form, self._config.merchant_key)
        body = self._post(url, encode_form(form), limit, operation)
        answer = decode_form(body, limit=limit, what=f"{operation} answer")
        require(answer, _ANSWER_FIELDS, f"{operation} answer")
        self._trust.verify_form(answer)
        if answer.get("merId", self._config.mer_id) != self._config.mer_id:
            raise Malformed(f"{operation} answer is for merchant {answer['merId']}", rail=RAIL)
        if "orderId" in form and answer.get("orderId", form["orderId"]) != form["orderId"]:
            raise Malformed(f"{operation} answer is for order {answer['orderId']}", rail=RAIL)
        if form["txnType"] != TxnType.QUERY and answer["txnType"] != form["txnType"]:
            raise Malformed(f"{operation} answer is for txnType {answer['txnType']}", rail=RAIL)
        return answer

    def _post(self, url: str, body: bytes, limit: int, operation: str) -> bytes:
        try:
            with self._http.stream("POST", url, content=body, headers=_FORM_HEADERS) as response:
                if response.status_code >= 500:
                    raise RailUnavailable(f"{operation}: gateway answered HTTP {response.status_code}",
                                          rail=RAIL)
                if response.status_code != 200:
                    raise Malformed(f"{operation}: gateway answered HTTP {response.status_code}", rail=RAIL)
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise Malformed(f"{operation} answer of {declared} bytes exceeds {limit}", rail=RAIL)
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise Malformed(f"{operation} answer exceeds {limit} bytes", rail=RAIL)
                    chunks.append(chunk)
                return b"".join(chunks)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise RailUnavailable(f"{operation}: cannot reach the gateway: {exc}", rail=RAIL) from exc
        except httpx.TransportError as exc:
            # The request may have reached the gateway: only queryTrans can tell.
            raise RailTimeout(f"{operation}: no complete answer: {exc}", rail=RAIL) from exc

    def _result(self, reference: str, amount: int, answer: Mapping[str, str], status: TxnStatus,
                rail_reference: str) -> RailResult:
        """The result of a money movement: PENDING for 05, ``status`` for 00 (when the
        answer moved exactly ``amount``), the error :func:`raise_for_code` names else."""
        operation = f"txnType {answer['txnType']}"
        code = answer["respCode"]
        if code == RespCode.ACCEPTED:
            status = TxnStatus.PENDING
        else:
            raise_for_code(answer, operation)
            require(answer, ("queryId", "txnAmt"), f"{operation} answer")
            if parse_fen(answer["txnAmt"]) != amount:
                raise Malformed(f"{operation} answer moved {answer['txnAmt']} fen, not {amount}", rail=RAIL)
        return RailResult(rail=RAIL, reference=reference, rail_reference=rail_reference or answer.get(
            "queryId", ""), status=status, amount=amount, currency=CURRENCY, response_code=code,
            rrn=_trace(answer), raw=answer)


def _trace(answer: Mapping[str, str]) -> str:
    """``traceNo`` + ``traceTime``: how the ZM file and notifications identify a message."""
    trace_no, trace_time = answer.get("traceNo", ""), answer.get("traceTime", "")
    return trace_no + trace_time if trace_no and trace_time else ""
