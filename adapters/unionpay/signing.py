"""ACP signMethod 01: how messages are signed, and how a signer is trusted.

The rule, for requests, answers and notifications alike:

1. take every field except ``signature`` whose value is not empty;
2. sort by field name and join as ``name=value`` pairs with ``&`` (raw values, no
   URL encoding);
3. SHA-256 that UTF-8 string and write the digest as 64 lowercase hex characters;
4. sign *the hex string* (its ASCII bytes) with SHA256withRSA (PKCS #1 v1.5) and put
   the base64 of the signature in ``signature``.

The gateway sends its signing certificate PEM-encoded in ``signPubKeyCert`` (which is
itself a signed field). A receiver trusts it only when it was issued directly by a
configured root, is inside its validity dates at the time of checking, is not a CA,
may sign (key usage), and names the gateway's organisation: the last check stops a
merchant's certificate from the same root from signing as the gateway.

Sensitive card data (``accNo``, ``encryptedInfo``) is RSA-encrypted (PKCS #1 v1.5)
with the gateway's encryption certificate and sent base64-encoded with
``encryptCertId``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import threading
from collections.abc import Mapping, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from adapters.base import Malformed, SignatureInvalid
from adapters.unionpay.constants import RAIL

SIGNATURE = "signature"
SIGNER_CERT = "signPubKeyCert"
_CACHE_LIMIT = 64


def canonical_string(form: Mapping[str, str]) -> str:
    """The string that is digested: sorted ``k=v`` pairs without ``signature`` and
    without empty values."""
    return "&".join(f"{k}={form[k]}" for k in sorted(form) if k != SIGNATURE and form[k] != "")


def digest_hex(form: Mapping[str, str]) -> str:
    """Lowercase hex SHA-256 of the canonical string (UTF-8)."""
    return hashlib.sha256(canonical_string(form).encode("utf-8")).hexdigest()


def sign_form(form: Mapping[str, str], key: rsa.RSAPrivateKey) -> str:
    """The base64 ``signature`` of ``form`` under ``key`` (signMethod 01)."""
    raw = key.sign(digest_hex(form).encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(raw).decode("ascii")


def signature_matches(form: Mapping[str, str], public_key: rsa.RSAPublicKey) -> bool:
    """True when ``form["signature"]`` is a valid signMethod 01 signature by ``public_key``."""
    try:
        raw = base64.b64decode(form.get(SIGNATURE, ""), validate=True)
    except (binascii.Error, ValueError):
        return False
    if not raw:
        return False
    try:
        public_key.verify(raw, digest_hex(form).encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """An unencrypted PEM RSA private key; anything else is a configuration error."""
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("signMethod 01 needs an RSA private key")
    return key


def load_certificate(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode("ascii"))


def certificate_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def cert_id(cert: x509.Certificate) -> str:
    """ACP's ``certId``/``encryptCertId``: the certificate serial number in decimal."""
    return str(cert.serial_number)


def rsa_public_key(cert: x509.Certificate) -> rsa.RSAPublicKey:
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("certificate does not hold an RSA key")
    return key


def encrypt_sensitive(cert: x509.Certificate, plaintext: str) -> str:
    """Base64 of ``plaintext`` (UTF-8) encrypted to the holder of ``cert``."""
    raw = rsa_public_key(cert).encrypt(plaintext.encode("utf-8"), padding.PKCS1v15())
    return base64.b64encode(raw).decode("ascii")


def decrypt_sensitive(key: rsa.RSAPrivateKey, ciphertext: str) -> str:
    """Inverse of :func:`encrypt_sensitive`; :class:`Malformed` when it does not decrypt."""
    try:
        return key.decrypt(base64.b64decode(ciphertext, validate=True), padding.PKCS1v15()).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise Malformed("encrypted field does not decrypt", rail=RAIL) from exc


def _organization(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(names[0].value) if names else ""


class SignerTrust:
    """Decides whether a ``signPubKeyCert`` may sign, and verifies signed forms.

    ``roots`` are the trusted root certificates; ``organization`` (when not empty) is
    the organisation the signer certificate must name. Thread-safe: chain checks are
    cached per certificate text, validity dates are checked on every use.
    """

    def __init__(self, roots: Sequence[x509.Certificate], organization: str = "") -> None:
        if not roots:
            raise ValueError("at least one trusted root certificate is required")
        self._roots = tuple(roots)
        self._organization = organization
        self._lock = threading.Lock()
        self._chained: dict[str, x509.Certificate] = {}

    def signer_key(self, pem: str, at: dt.datetime | None = None) -> rsa.RSAPublicKey:
        """The public key of the signer certificate ``pem`` once every trust check has
        passed at time ``at`` (now by default); :class:`SignatureInvalid` otherwise."""
        now = at or dt.datetime.now(dt.UTC)
        with self._lock:
            cert = self._chained.get(pem)
        if cert is None:
            cert = self._check_chain(pem, now)
            with self._lock:
                if len(self._chained) >= _CACHE_LIMIT:
                    self._chained.clear()
                self._chained[pem] = cert
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise SignatureInvalid("signer certificate is outside its validity dates", rail=RAIL,
                                   detail={"not_after": cert.not_valid_after_utc.isoformat()})
        return rsa_public_key(cert)

    def _check_chain(self, pem: str, now: dt.datetime) -> x509.Certificate:
        try:
            cert = load_certificate(pem)
        except ValueError as exc:
            raise SignatureInvalid("signer certificate is not a readable PEM certificate",
                                   rail=RAIL) from exc
        if not isinstance(cert.public_key(), rsa.RSAPublicKey):
            raise SignatureInvalid("signer certificate does not hold an RSA key", rail=RAIL)
        if not any(self._issued_by(cert, root, now) for root in self._roots):
            raise SignatureInvalid("signer certificate does not chain to a trusted root", rail=RAIL,
                                   detail={"issuer": cert.issuer.rfc4514_string()})
        try:
            if cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
                raise SignatureInvalid("a CA certificate may not sign messages", rail=RAIL)
        except x509.ExtensionNotFound:
            pass
        try:
            if not cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature:
                raise SignatureInvalid("signer certificate may not sign (key usage)", rail=RAIL)
        except x509.ExtensionNotFound:
            pass
        if self._organization and _organization(cert) != self._organization:
            raise SignatureInvalid("signer certificate does not name the gateway", rail=RAIL,
                                   detail={"organization": _organization(cert)})
        return cert

    @staticmethod
    def _issued_by(cert: x509.Certificate, root: x509.Certificate, now: dt.datetime) -> bool:
        try:
            cert.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature):
            return False
        return root.not_valid_before_utc <= now <= root.not_valid_after_utc

    def verify_form(self, form: Mapping[str, str], at: dt.datetime | None = None) -> None:
        """Raise :class:`SignatureInvalid` unless ``form`` carries a trusted signer
        certificate and a valid signature by it."""
        pem = form.get(SIGNER_CERT, "")
        if not pem:
            raise SignatureInvalid("message carries no signPubKeyCert", rail=RAIL)
        if not form.get(SIGNATURE):
            raise SignatureInvalid("message is not signed", rail=RAIL)
        if not signature_matches(form, self.signer_key(pem, at)):
            raise SignatureInvalid("signature does not match the message", rail=RAIL)
