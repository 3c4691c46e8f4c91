"""The journal's Ed25519 key: loading, generating, and naming it.

The private key signs checkpoints and export manifests. It is read from
``SETTLEMENT_JOURNAL_SIGNING_KEY_FILE`` (a PEM file) or
``SETTLEMENT_JOURNAL_SIGNING_KEY`` (the PEM text); the service never makes one up:
without it, checkpointing and exporting are refused with ``signing_key_missing``.
``settlement journal keygen --out FILE`` writes a new private key (mode 0600) and
its public key beside it (``FILE.pub``).

A key is named as in the C2SP signed-note format: the key ID is the first four
bytes of SHA-256(name || 0x0A || 0x01 || raw public key), and the verifier key
string is ``name+hex(key ID)+base64(0x01 || raw public key)``.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from settlement.config import Settings
from settlement.journal.errors import InvalidSigningKey, KeyFileExists, SigningKeyMissing

ED25519_ALGORITHM = 0x01


@dataclass(frozen=True)
class PublicKey:
    """A verifying key with its signed-note name."""

    key: Ed25519PublicKey
    name: str

    @property
    def raw(self) -> bytes:
        return self.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def key_hash(self) -> bytes:
        return hashlib.sha256(self.name.encode() + b"\n" + bytes([ED25519_ALGORITHM]) + self.raw).digest()[:4]

    @property
    def key_id(self) -> str:
        return self.key_hash.hex()

    @property
    def pem(self) -> str:
        return self.key.public_bytes(serialization.Encoding.PEM,
                                     serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    @property
    def note_key(self) -> str:
        """The verifier key string of the signed-note format."""
        encoded = base64.b64encode(bytes([ED25519_ALGORITHM]) + self.raw).decode()
        return f"{self.name}+{self.key_id}+{encoded}"

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            self.key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class SigningKey:
    key: Ed25519PrivateKey
    name: str

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.key.public_key(), self.name)

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message)


def load_signing_key(settings: Settings) -> SigningKey:
    """The configured private key; ``signing_key_missing`` when none is configured."""
    if settings.journal_signing_key is not None:
        pem = settings.journal_signing_key.get_secret_value().encode()
        source = "SETTLEMENT_JOURNAL_SIGNING_KEY"
    elif settings.journal_signing_key_file is not None:
        path = Path(settings.journal_signing_key_file)
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise SigningKeyMissing(f"cannot read the journal signing key file {path}: {exc.strerror}",
                                    path=str(path)) from None
        source = str(path)
    else:
        raise SigningKeyMissing("no journal signing key is configured: set SETTLEMENT_JOURNAL_SIGNING_KEY_FILE "
                                "(create a key with `settlement journal keygen --out FILE`)")
    return SigningKey(private_key_from_pem(pem, source), settings.journal_origin)


def private_key_from_pem(pem: bytes, source: str = "key") -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidSigningKey(f"{source} is not an unencrypted PEM private key: {exc}", source=source) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidSigningKey(f"{source} is not an Ed25519 key", source=source)
    return key


def public_key_from_pem(pem: bytes, name: str, source: str = "public key") -> PublicKey:
    """A public key from PEM (SubjectPublicKeyInfo); a private key PEM is accepted too."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        try:
            return PublicKey(private_key_from_pem(pem, source).public_key(), name)
        except InvalidSigningKey:
            raise InvalidSigningKey(f"{source} is not a PEM Ed25519 public key", source=source) from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidSigningKey(f"{source} is not an Ed25519 key", source=source)
    return PublicKey(key, name)


def read_public_key(path: Path, name: str) -> PublicKey:
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidSigningKey(f"cannot read public key {path}: {exc.strerror}", source=str(path)) from None
    return public_key_from_pem(pem, name, str(path))


def keygen(out: Path, *, force: bool = False) -> tuple[Path, Path]:
    """Write a new private key to ``out`` (mode 0600) and its public key to
    ``out.pub``. Refuses to overwrite either unless ``force``."""
    out = Path(out)
    public_path = out.with_name(out.name + ".pub")
    for path in (out, public_path):
        if path.exists() and not force:
            raise KeyFileExists(f"{path} exists; refusing to overwrite a key (use --force)", path=str(path))
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    out.parent.mkdir(parents=True, exist_ok=True)
    # Create with 0600 from the start: the key is never readable by others, not even briefly.
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    os.chmod(out, 0o600)
    public_path.write_text(PublicKey(key.public_key(), "").pem)
    return out, public_path
