"""Keys and certificates the simulator makes at start time (never stored on disk).

One root CA issues the gateway's signing and encryption certificates and the
merchant's certificate, as UnionPay's CFCA-rooted hierarchy does (collapsed here to
root -> end entity). Keys are RSA 2048 as ACP uses.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

_KEY_BITS = 2048


@dataclass(frozen=True)
class Identity:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    def key_pem(self) -> str:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode("ascii")


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=_KEY_BITS)


def make_root(common_name: str, organization: str) -> Identity:
    """A self-signed CA valid from yesterday for ten years."""
    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    name = _name(common_name, organization)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return Identity(key, cert)


def issue(root: Identity, common_name: str, organization: str, *, encryption: bool = False,
          valid_from: dt.datetime | None = None, valid_days: int = 730,
          key: rsa.RSAPrivateKey | None = None) -> Identity:
    """An end-entity certificate from ``root``: a signing one, or with ``encryption``
    one for key encipherment."""
    key = key or _new_key()
    start = valid_from or dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    cert = (x509.CertificateBuilder()
            .subject_name(_name(common_name, organization)).issuer_name(root.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=valid_days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=not encryption, content_commitment=False,
                                         key_encipherment=encryption, data_encipherment=encryption,
                                         key_agreement=False, key_cert_sign=False, crl_sign=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(root.key, hashes.SHA256()))
    return Identity(key, cert)
