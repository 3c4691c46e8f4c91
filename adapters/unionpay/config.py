"""Configuration of one UnionPay rail instance, read from plain strings.

Keys (all strings, as :meth:`RailPlugin.create_rail` receives them):

============================  ========  ====================================================
key                           required  meaning
============================  ========  ====================================================
``mer_id``                    yes       merchant id (``merId``, 15 digits)
``merchant_key_pem``          yes       the merchant's RSA private key (PEM, unencrypted)
``merchant_cert_pem``         yes       the merchant's certificate; its serial is ``certId``
``root_cert_pem``             yes       trusted root certificate(s), PEM, concatenated
``encrypt_cert_pem``          yes       the gateway's encryption certificate (card data)
``back_trans_url``            yes       backTransReq endpoint (purchase, capture, refund...)
``single_query_url``          yes       queryTrans endpoint
``front_trans_url``           no        frontTransReq endpoint (browser payments)
``file_trans_url``            no        fileTransfer endpoint (ZM file download)
``notify_url``                no        default ``backUrl`` for notifications
``gateway_organization``      no        organisation the signer certificate must name
                                        (default 中国银联股份有限公司; empty disables)
``channel_type``              no        ``channelType`` (default 07, internet)
``timeout_seconds``           no        HTTP timeout (default 15)
``notification_max_age_s``    no        notifications whose txnTime is older are replays
                                        (default 86400)
============================  ========  ====================================================
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.unionpay.constants import CHANNEL_INTERNET, GATEWAY_ORGANIZATION
from adapters.unionpay.signing import load_certificate, load_private_key

_REQUIRED = ("mer_id", "merchant_key_pem", "merchant_cert_pem", "root_cert_pem",
             "encrypt_cert_pem", "back_trans_url", "single_query_url")


@dataclass(frozen=True)
class UnionPayConfig:
    mer_id: str
    merchant_key: rsa.RSAPrivateKey
    merchant_cert: x509.Certificate
    roots: tuple[x509.Certificate, ...]
    encrypt_cert: x509.Certificate
    back_trans_url: str
    single_query_url: str
    front_trans_url: str
    file_trans_url: str
    notify_url: str
    gateway_organization: str
    channel_type: str
    timeout: float  # float-ok: seconds
    notification_max_age: dt.timedelta

    @classmethod
    def from_mapping(cls, config: Mapping[str, str]) -> UnionPayConfig:
        """Parse and check ``config``; :class:`ValueError` names what is missing or wrong."""
        missing = [key for key in _REQUIRED if not config.get(key)]
        if missing:
            raise ValueError(f"unionpay configuration lacks {', '.join(missing)}")
        mer_id = config["mer_id"]
        if not (mer_id.isascii() and mer_id.isdigit() and len(mer_id) == 15):
            raise ValueError("mer_id must be 15 digits")
        roots = tuple(x509.load_pem_x509_certificates(config["root_cert_pem"].encode("ascii")))
        timeout = float(config.get("timeout_seconds") or "15")  # float-ok: seconds
        max_age = int(config.get("notification_max_age_s") or "86400")
        if timeout <= 0 or max_age <= 0:
            raise ValueError("timeout_seconds and notification_max_age_s must be positive")
        return cls(
            mer_id=mer_id,
            merchant_key=load_private_key(config["merchant_key_pem"]),
            merchant_cert=load_certificate(config["merchant_cert_pem"]),
            roots=roots,
            encrypt_cert=load_certificate(config["encrypt_cert_pem"]),
            back_trans_url=config["back_trans_url"],
            single_query_url=config["single_query_url"],
            front_trans_url=config.get("front_trans_url", ""),
            file_trans_url=config.get("file_trans_url", ""),
            notify_url=config.get("notify_url", ""),
            gateway_organization=config.get("gateway_organization", GATEWAY_ORGANIZATION),
            channel_type=config.get("channel_type") or CHANNEL_INTERNET,
            timeout=timeout,
            notification_max_age=dt.timedelta(seconds=max_age),
        )
