"""The manifest of an export: what it contains and what it is anchored to, signed.

``manifest.json`` (UTF-8 JSON, keys sorted) holds the format version, the period,
the signed checkpoint (its signed note, see :mod:`settlement.journal.notes`), the
run of journal sequence numbers exported with the hashes of the tree's nodes
outside that run (so the rows rebuild the signed root), and every file's name,
SHA-256, size and row count. ``manifest.json.sig`` is the base64 Ed25519 signature
of the exact bytes of ``manifest.json`` by the journal key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from pathlib import Path
from typing import Any

from settlement.exports.rows import MANIFEST, SIGNATURE
from settlement.journal.keys import PublicKey, SigningKey

FORMAT = "settlement-export/1"


class ManifestError(ValueError):
    """The manifest is missing, malformed or not signed by the given key."""


def write(directory: Path, doc: dict[str, Any], key: SigningKey) -> str:
    """Write the manifest and its signature; returns the manifest's SHA-256."""
    data = (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
    (directory / MANIFEST).write_bytes(data)
    (directory / SIGNATURE).write_text(base64.b64encode(key.sign(data)).decode() + "\n")
    return hashlib.sha256(data).hexdigest()


def read(directory: Path) -> tuple[bytes, dict[str, Any]]:
    path = directory / MANIFEST
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ManifestError(f"{MANIFEST}: cannot read it ({exc.strerror})") from None
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{MANIFEST}: not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ManifestError(f"{MANIFEST}: not a {FORMAT} manifest")
    return data, doc


def signature_ok(directory: Path, data: bytes, key: PublicKey) -> str | None:
    """None when ``manifest.json.sig`` is a valid signature of ``data`` by ``key``,
    else what is wrong."""
    try:
        signature = base64.b64decode((directory / SIGNATURE).read_text().strip(), validate=True)
    except OSError as exc:
        return f"cannot read it ({exc.strerror})"
    except (binascii.Error, ValueError):
        return "not a base64 signature"
    if not key.verify(signature, data):
        return f"the signature of {MANIFEST} does not verify with the public key given (key id {key.key_id})"
    return None


def sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
