"""A UnionPay ACP gateway stand-in on a loopback port.

Endpoints (POST, signed forms): frontTransReq (answers an HTML payment page),
backTransReq, queryTrans and fileTransfer (the ZM file of a clearing date). At start
it makes its root CA, its signing and encryption certificates and the merchant's key
and certificate; it verifies every request's signature against the merchant
certificate named by ``certId`` (respCode 11 when it fails), signs every answer and
notification, and delivers notifications to each request's ``backUrl`` with retries.

Options (strings, as ``create_simulator`` passes them):

* ``signing``: ``ok`` (default); ``wrong-key`` (a certificate from a root the adapter
  does not trust); ``mismatched-key`` (the trusted certificate, another key);
  ``expired-cert`` (a trusted but expired certificate); ``foreign-org`` (the merchant's
  own certificate, trusted root but not the gateway).
* ``answer_fault``: ``none`` (default), ``truncated`` (answers cut in half) or
  ``oversized`` (answers padded past 256 KiB).
* ``mer_id`` (default 777290058110048), ``notify_attempts`` (6),
  ``notify_first_delay`` (0.05 s, doubling), ``pending_delay`` (0.05 s before a
  respCode 05 transaction resolves), ``port`` (0: a free port).

Test cards and amounts: :class:`~adapters.unionpay.constants.TestCards`.

Discrepancies the ZM file can carry: MISSING, DUPLICATE, LATE, FEE_DIFFERS,
AMOUNT_DIFFERS, REFUND, CHARGEBACK (by 交易代码) and UNKNOWN. It cannot carry
FX_RATE_DIFFERS: the rail settles in CNY only and no ZM field holds an FX rate.
Asked for by explicit list, that kind is refused with
:class:`~adapters.simulation.DiscrepancyNotCarried` (see :data:`NOT_CARRIED`); a
seeded run never picks it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import html
import io
import threading
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import BinaryIO

from adapters.base import (
    Discrepancy,
    DiscrepancyKind,
    Malformed,
    MethodKind,
    PaymentMethod,
    SettlementRecord,
    TxnStatus,
)
from adapters.simulation import (
    LoopbackHTTPServer,
    SettlementBook,
    apply_discrepancies,
    plan_random,
    random_kinds,
    refuse_uncarried,
)
from adapters.unionpay import transfer
from adapters.unionpay.constants import (
    BEIJING,
    CURRENCY,
    GATEWAY_ORGANIZATION,
    PATH_BACK,
    PATH_FILE,
    PATH_FRONT,
    PATH_QUERY,
    RAIL,
    SIGN_METHOD_RSA,
    RespCode,
    TestCards,
)
from adapters.unionpay.files import write_zm
from adapters.unionpay.gateway import Card, Gateway
from adapters.unionpay.http import handler_for
from adapters.unionpay.messages import MAX_ANSWER_BYTES, MAX_REQUEST_BYTES, decode_form, encode_form, message_for
from adapters.unionpay.notifier import Delivery, Notifier, Timer
from adapters.unionpay.pki import Identity, issue, make_root
from adapters.unionpay.signing import (
    cert_id,
    certificate_pem,
    decrypt_sensitive,
    rsa_public_key,
    sign_form,
    signature_matches,
)

SIGNING_MODES = ("ok", "wrong-key", "mismatched-key", "expired-cert", "foreign-org")
#: Discrepancy kinds the ZM file cannot carry, and why.
NOT_CARRIED: Mapping[DiscrepancyKind, str] = {
    DiscrepancyKind.FX_RATE_DIFFERS: "UnionPay settles in CNY only, so no ZM field holds an FX rate",
}
ANSWER_FAULTS = ("none", "truncated", "oversized")
_DEFAULTS = {"signing": "ok", "answer_fault": "none", "mer_id": "777290058110048",
             "notify_attempts": "6", "notify_first_delay": "0.05", "pending_delay": "0.05", "port": "0"}


@dataclasses.dataclass(frozen=True)
class _Keys:
    root: Identity
    signer: Identity
    encrypter: Identity
    merchant: Identity
    answer_key: Identity          # what the answers are really signed with (per ``signing``)


class UnionPaySimulator:
    """Thread-safe; state lives in its :class:`Gateway`, book and file store."""

    name = RAIL

    def __init__(self, **options: str) -> None:
        unknown = set(options) - set(_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown unionpay simulator options: {', '.join(sorted(unknown))}")
        settings = {**_DEFAULTS, **options}
        if settings["signing"] not in SIGNING_MODES or settings["answer_fault"] not in ANSWER_FAULTS:
            raise ValueError(f"signing must be one of {SIGNING_MODES}, answer_fault one of {ANSWER_FAULTS}")
        self._signing = settings["signing"]
        self._fault = settings["answer_fault"]
        self.mer_id = settings["mer_id"]
        self._book = SettlementBook()
        self._timer = Timer(f"unionpay-sim-{self.mer_id}")
        self._notifier = Notifier(self._timer, attempts=int(settings["notify_attempts"]),
                                  first_delay=float(settings["notify_first_delay"]))  # float-ok: seconds
        self._gateway = Gateway(mer_id=self.mer_id, book=self._book, schedule=self._timer.call_later,
                                notify=self._notify,
                                pending_delay=float(settings["pending_delay"]))  # float-ok: seconds
        self._server = LoopbackHTTPServer(handler_for(self.handle), int(settings["port"]))
        self._keys: _Keys | None = None
        self._lock = threading.Lock()
        self._files: dict[dt.date, bytes] = {}

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        if self._keys is None:
            self._keys = self._make_keys()
        self._timer.start()
        self._server.start()

    def stop(self) -> None:
        self._server.stop()
        self._timer.stop()

    def _make_keys(self) -> _Keys:
        root = make_root("China UnionPay Test Root", "China Financial Certification Authority")
        signer = issue(root, "UnionPay ACP signing", GATEWAY_ORGANIZATION)
        encrypter = issue(root, "UnionPay ACP encryption", GATEWAY_ORGANIZATION, encryption=True)
        merchant = issue(root, f"merchant {self.mer_id}", "Marketplace merchant")
        answer_key = signer
        if self._signing == "wrong-key":
            rogue = make_root("China UnionPay Test Root", "China Financial Certification Authority")
            answer_key = issue(rogue, "UnionPay ACP signing", GATEWAY_ORGANIZATION, key=signer.key)
        elif self._signing == "mismatched-key":
            other = issue(root, "other", GATEWAY_ORGANIZATION)
            answer_key = Identity(other.key, signer.cert)
        elif self._signing == "expired-cert":
            answer_key = issue(root, "UnionPay ACP signing", GATEWAY_ORGANIZATION, key=signer.key,
                               valid_from=dt.datetime.now(dt.UTC) - dt.timedelta(days=400), valid_days=365)
        elif self._signing == "foreign-org":
            answer_key = merchant
        return _Keys(root, signer, encrypter, merchant, answer_key)

    @property
    def keys(self) -> _Keys:
        if self._keys is None:
            raise RuntimeError("simulator not started")
        return self._keys

    @property
    def url(self) -> str:
        return self._server.url

    # -- the RailSimulator protocol -------------------------------------------------

    def adapter_config(self) -> dict[str, str]:
        keys = self.keys
        return {
            "mer_id": self.mer_id,
            "merchant_key_pem": keys.merchant.key_pem(),
            "merchant_cert_pem": certificate_pem(keys.merchant.cert),
            "root_cert_pem": certificate_pem(keys.root.cert),
            "encrypt_cert_pem": certificate_pem(keys.encrypter.cert),
            "front_trans_url": self.url + PATH_FRONT,
            "back_trans_url": self.url + PATH_BACK,
            "single_query_url": self.url + PATH_QUERY,
            "file_trans_url": self.url + PATH_FILE,
            "gateway_organization": GATEWAY_ORGANIZATION,
        }

    def approving_method(self) -> PaymentMethod:
        return PaymentMethod(MethodKind.CARD, pan=TestCards.APPROVE, expiry="3012")

    def declining_method(self) -> tuple[PaymentMethod, str]:
        return PaymentMethod(MethodKind.CARD, pan=TestCards.INSUFFICIENT_FUNDS, expiry="3012"), "64"

    def transaction_status(self, reference: str) -> TxnStatus:
        return self._gateway.status(reference)

    def notification_for(self, reference: str) -> tuple[Mapping[str, str], bytes]:
        """The backUrl notification for the message ``reference`` (its ``orderId``): the
        gateway's answer to it, signed as answers are, as a form. The same every time
        (``notification_id`` ``queryId:txnType``), as each retry is."""
        body = encode_form(self.sign(self._gateway.answer(reference)))
        return {"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"}, body

    def write_settlement_file(self, out: BinaryIO, settlement_date: dt.date,
                              discrepancies: Sequence[Discrepancy] = (), seed: int | None = None,
                              rate: Decimal = Decimal(0)) -> list[Discrepancy]:
        """Write a ZM file of every money movement not yet written (and LATE ones held
        back before), all cleared on ``settlement_date``; keep it for fileTransfer. A
        ZM file has no header or trailer, so a day with nothing to clear writes nothing
        (and fileTransfer answers 98 for it): no bytes, which :func:`.files.parse_zm`
        refuses as an empty file. A kind the ZM file cannot carry (:data:`NOT_CARRIED`)
        in ``discrepancies`` raises :class:`~adapters.simulation.DiscrepancyNotCarried`
        and writes nothing."""
        refuse_uncarried(RAIL, discrepancies, NOT_CARRIED)
        pending, held = self._book.take()
        records = [dataclasses.replace(r, settlement_date=settlement_date) for r in (*held, *pending)]
        planned = list(discrepancies)
        if seed is not None:
            planned += plan_random(records, seed, rate, random_kinds(NOT_CARRIED))
        written, later, applied = apply_discrepancies(
            records, planned, rail=RAIL, settlement_date=settlement_date, currency=CURRENCY,
            operation_id=lambda record: self._gateway.new_trace(record.transaction_date))
        self._book.hold_back(later)
        buffer = io.BytesIO()
        write_zm(buffer, written, settlement_date=settlement_date, mer_id=self.mer_id, details=self._details)
        data = buffer.getvalue()
        if data:
            with self._lock:
                self._files[settlement_date] = self._files.get(settlement_date, b"") + data
        out.write(data)
        return applied

    # -- extras for tests and the demo ----------------------------------------------

    @property
    def deliveries(self) -> list[Delivery]:
        """Every notification sent so far and what became of it."""
        return list(self._notifier.deliveries)

    def zm_file_name(self, settlement_date: dt.date) -> str:
        return f"INN{settlement_date:%y%m%d}88ZM_{self.mer_id}"

    def sign(self, fields: Mapping[str, str]) -> dict[str, str]:
        """``fields`` signed as this gateway signs answers and notifications."""
        keys = self.keys
        signed = {"version": "5.1.0", "encoding": "UTF-8", **fields, "signMethod": SIGN_METHOD_RSA,
                  "signPubKeyCert": certificate_pem(keys.answer_key.cert)}
        signed.pop("signature", None)
        signed["signature"] = sign_form(signed, keys.answer_key.key)
        return signed

    def _details(self, record: SettlementRecord) -> dict[str, str]:
        return {k: v for k, v in self._gateway.details(record.rrn).items() if v}

    def _notify(self, url: str, fields: dict[str, str]) -> None:
        self._notifier.send(url, encode_form(self.sign(fields)))

    # -- HTTP -----------------------------------------------------------------------

    def handle(self, path: str, body: bytes) -> tuple[int, bytes, str]:
        """(HTTP status, body, content type) for one POST."""
        if path not in (PATH_FRONT, PATH_BACK, PATH_QUERY, PATH_FILE):
            return 404, b"not found", "text/plain"
        form, refusal = self._verify(body)
        if refusal is not None:
            return self._answer(refusal)
        if path == PATH_FRONT:
            return 200, _front_page(form), "text/html; charset=utf-8"
        return self._answer(self._route(path, form))

    def _verify(self, body: bytes) -> tuple[dict[str, str], dict[str, str] | None]:
        """The request form, or the answer refusing it (10 unreadable, 11 bad signature)."""
        try:
            form = decode_form(body, limit=MAX_REQUEST_BYTES, what="request")
        except Malformed:
            return {}, _refusal({}, RespCode.FORMAT)
        merchant = self.keys.merchant.cert
        if (form.get("signMethod") != SIGN_METHOD_RSA or form.get("certId") != cert_id(merchant)
                or not signature_matches(form, rsa_public_key(merchant))):
            return form, _refusal(form, RespCode.SIGNATURE)
        return form, None

    def _route(self, path: str, form: Mapping[str, str]) -> dict[str, str]:
        if path == PATH_QUERY:
            return self._gateway.query(form)
        if path == PATH_FILE:
            return self._file_answer(form)
        try:
            card = self._card(form)
        except Malformed:
            return _refusal(form, RespCode.FORMAT)
        return self._gateway.back(form, card)

    def _answer(self, fields: dict[str, str]) -> tuple[int, bytes, str]:
        if self._fault == "oversized":
            fields = {**fields, "reqReserved": "x" * (2 * MAX_ANSWER_BYTES)}
        body = encode_form(self.sign(fields))
        if self._fault == "truncated":
            body = body[: len(body) // 2]
        return 200, body, "application/x-www-form-urlencoded;charset=UTF-8"

    def _card(self, form: Mapping[str, str]) -> Card:
        key = self.keys.encrypter.key
        pan = decrypt_sensitive(key, form["accNo"]) if form.get("accNo") else ""
        info: dict[str, str] = {}
        if form.get("customerInfo"):
            try:
                text = base64.b64decode(form["customerInfo"], validate=True).decode("utf-8")
            except (binascii.Error, ValueError) as exc:
                raise Malformed("customerInfo is not base64 UTF-8", rail=RAIL) from exc
            info = _braced(text)
            if "encryptedInfo" in info:
                info.update(_braced("{" + decrypt_sensitive(key, info.pop("encryptedInfo")) + "}"))
        return Card(pan=pan, expiry=info.get("expired", ""), holder=info.get("customerNm", ""))

    def _file_answer(self, form: Mapping[str, str]) -> dict[str, str]:
        settle = form.get("settleDate", "")
        day = _date_for(settle) if len(settle) == 4 and settle.isdigit() else None
        if day is None:
            return _refusal(form, RespCode.FORMAT)
        with self._lock:
            data = self._files.get(day, b"")
        if not data:
            # The day's file is cut on first request, from what has cleared so far.
            self.write_settlement_file(io.BytesIO(), day)
            with self._lock:
                data = self._files.get(day, b"")
        if not data:
            return _refusal(form, RespCode.FILE_MISSING)
        name = self.zm_file_name(day)
        return {**_echo(form), "respCode": RespCode.SUCCESS, "respMsg": message_for(RespCode.SUCCESS),
                "settleDate": settle, "fileType": form.get("fileType", "00"), "fileName": f"{name}.zip",
                "fileContent": transfer.pack_files({name: data})}


def _echo(form: Mapping[str, str]) -> dict[str, str]:
    return {k: form[k] for k in ("txnType", "txnSubType", "bizType", "merId", "orderId", "txnTime",
                                 "accessType") if form.get(k)}


def _refusal(form: Mapping[str, str], code: str) -> dict[str, str]:
    return {**_echo(form), "respCode": code, "respMsg": message_for(code)}


def _braced(text: str) -> dict[str, str]:
    """``{k=v&k=v}`` as ACP nests fields inside one field."""
    if not (text.startswith("{") and text.endswith("}")):
        raise Malformed("nested ACP field is not {k=v&...}", rail=RAIL)
    pairs = [item.split("=", 1) for item in text[1:-1].split("&") if item]
    if any(len(pair) != 2 for pair in pairs):
        raise Malformed("nested ACP field is not {k=v&...}", rail=RAIL)
    return dict(pairs)


def _date_for(mmdd: str) -> dt.date | None:
    """The latest date with this month and day that is not more than a week ahead."""
    today = dt.datetime.now(BEIJING).date()
    for year in (today.year + 1, today.year, today.year - 1):
        try:
            day = dt.date(year, int(mmdd[:2]), int(mmdd[2:]))
        except ValueError:
            continue
        if day <= today + dt.timedelta(days=7):
            return day
    return None


def _front_page(form: Mapping[str, str]) -> bytes:
    """The cardholder's payment page: an order summary and a form (no card entry flow)."""
    order = html.escape(form.get("orderId", ""))
    amount = form.get("txnAmt", "0")
    target = html.escape(form.get("frontUrl", ""), quote=True)
    yuan = f"{int(amount) // 100}.{int(amount) % 100:02d}" if amount.isdigit() else html.escape(amount)
    page = (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>银联在线支付</title></head>"
            f"<body><h1>银联在线支付</h1><p>订单号 {order} 金额 ¥{yuan}</p>"
            f"<form method=\"post\" action=\"{target}\"><input type=\"hidden\" name=\"orderId\" "
            f"value=\"{order}\"><button type=\"submit\">确认支付</button></form></body></html>")
    return page.encode("utf-8")
