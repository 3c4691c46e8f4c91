"""One signed call to Alipay's open-platform gateway and its verified answer.

A call posts the common parameters (``app_id``, ``method``, ``format=JSON``,
``charset=utf-8``, ``sign_type=RSA2``, ``timestamp`` in Beijing time, ``version=1.0``,
optional ``notify_url``) and ``biz_content`` (JSON) as a form, signed with the app's
private key. The answer is a JSON body ``{"<method>_response": {...}, "sign": "..."}``
verified against Alipay's public key before anything in it is believed.

Gateway codes and what they become:

* ``10000`` success, ``10003`` waiting for the buyer: returned to the caller;
* ``40004`` business failure: :class:`Declined` with the ``sub_code``;
* ``40002`` with ``isv.invalid-signature``: :class:`SignatureInvalid` (our request's
  signature, i.e. the gateway holds another public key for this app);
* other ``400xx``: :class:`GatewayRejected` (a request the gateway would never accept);
* ``20000`` (service unavailable): :class:`RailTimeout` for calls that move money,
  because Alipay may have acted (its guide says to query); :class:`RailUnavailable`
  for read-only calls.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.base import Declined, Malformed, RailError, RailTimeout, RailUnavailable, SignatureInvalid

from .codec import RAIL, beijing_now, format_time
from .signing import SIGN_TYPE, sign_params, verified_response

SUCCESS = "10000"
WAITING = "10003"
UNAVAILABLE = "20000"
INVALID_SIGNATURE = "isv.invalid-signature"


class GatewayRejected(RailError):
    """The gateway refused the request itself (missing or invalid arguments, no
    permission): retrying the same request cannot succeed."""

    code = "rail_request_rejected"


class Gateway:
    """A signed, verifying client of one app on one gateway. Thread-safe: the key
    objects are immutable and ``httpx.Client`` pools connections across threads."""

    def __init__(self, *, url: str, app_id: str, private_key: rsa.RSAPrivateKey,
                 alipay_key: rsa.RSAPublicKey, timeout: float, max_response_bytes: int,  # float-ok: seconds
                 clock: Callable[[], dt.datetime] = beijing_now) -> None:
        self.url = url
        self.app_id = app_id
        self._private_key = private_key
        self._alipay_key = alipay_key
        self._max_response_bytes = max_response_bytes
        self._clock = clock
        self._http = httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False)

    @property
    def private_key(self) -> rsa.RSAPrivateKey:
        return self._private_key

    def close(self) -> None:
        self._http.close()

    def signed_form(self, method: str, biz: Mapping[str, Any], notify_url: str | None = None) -> dict[str, str]:
        """The complete, signed parameter set of one request."""
        params = {
            "app_id": self.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": SIGN_TYPE,
            "timestamp": format_time(self._clock()),
            "version": "1.0",
            "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
        }
        if notify_url:
            params["notify_url"] = notify_url
        return sign_params(params, self._private_key)

    def call(self, method: str, biz: Mapping[str, Any], *, notify_url: str | None = None,
             moves_money: bool = True) -> dict[str, Any]:
        """Post one request and return the verified ``<method>_response`` object when
        its code is ``10000`` or ``10003``; raise as the module docstring says otherwise."""
        body = self.post(self.signed_form(method, biz, notify_url), moves_money=moves_money)
        response = verified_response(body, method, self._alipay_key)
        code = str(response.get("code", ""))
        if code in (SUCCESS, WAITING):
            return response
        sub_code = str(response.get("sub_code", ""))
        message = f"{method}: {code} {response.get('msg', '')} {sub_code} {response.get('sub_msg', '')}".strip()
        detail = {"method": method, "code": code, "sub_code": sub_code}
        if code == "40004":
            raise Declined(message, rail_code=sub_code, rail=RAIL, detail=detail)
        if sub_code == INVALID_SIGNATURE:
            raise SignatureInvalid(message, rail=RAIL, detail=detail)
        if code == UNAVAILABLE:
            error = RailTimeout if moves_money else RailUnavailable
            raise error(message, rail=RAIL, detail=detail)
        raise GatewayRejected(message, rail=RAIL, detail=detail)

    def _read(self, response: httpx.Response) -> bytes:
        if response.status_code >= 500:
            raise RailUnavailable(f"gateway answered HTTP {response.status_code}", rail=RAIL)
        if response.status_code != 200:
            raise GatewayRejected(f"gateway answered HTTP {response.status_code}", rail=RAIL)
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_response_bytes:
            raise Malformed(f"response of {declared} bytes exceeds {self._max_response_bytes}", rail=RAIL)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self._max_response_bytes:
                raise Malformed(f"response exceeds {self._max_response_bytes} bytes", rail=RAIL)
            chunks.append(chunk)
        return b"".join(chunks)

    def post(self, form: Mapping[str, str], *, moves_money: bool = True, method: str = "POST") -> str:
        """Send ``form`` and return the body as text, refusing bodies larger than the
        configured limit before they are read into memory."""
        try:
            if method == "GET":
                request = self._http.build_request("GET", self.url, params=dict(form))
            else:
                request = self._http.build_request(
                    "POST", self.url, data=dict(form),
                    headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"})
            response = self._http.send(request, stream=True)
            try:
                data = self._read(response)
            finally:
                response.close()
        except httpx.ConnectError as exc:
            raise RailUnavailable(f"cannot reach the gateway: {exc}", rail=RAIL) from exc
        except httpx.ConnectTimeout as exc:
            raise RailUnavailable(f"gateway connect timed out: {exc}", rail=RAIL) from exc
        except httpx.TimeoutException as exc:
            error = RailTimeout if moves_money else RailUnavailable
            raise error(f"gateway did not answer in time: {exc}", rail=RAIL) from exc
        except httpx.RemoteProtocolError as exc:
            # The connection broke mid-answer: the request may have been processed.
            raise Malformed(f"gateway answer was cut off: {exc}", rail=RAIL) from exc
        except httpx.HTTPError as exc:
            raise RailUnavailable(f"HTTP failure talking to the gateway: {exc}", rail=RAIL) from exc
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Malformed(f"response is not UTF-8 at byte {exc.start}", rail=RAIL) from exc
