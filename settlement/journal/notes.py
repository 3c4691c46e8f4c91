"""Checkpoints as signed notes (the C2SP ``tlog-checkpoint`` and ``signed-note``
formats used by transparency logs).

The body of a checkpoint is text, every line ending in a newline::

    <origin>                      the journal's name (SETTLEMENT_JOURNAL_ORIGIN)
    <tree size>                   decimal
    <root hash>                   base64 of the 32-byte RFC 9162 root
    chain <chain head>            base64 of the hash chain after the last leaf
    time <created at>             UTC, YYYY-MM-DDTHH:MM:SS.ffffffZ

The note is the body, an empty line, and one signature line
``\u2014 <key name> <base64(4-byte key ID || 64-byte Ed25519 signature)>``; the
signature is over the body's bytes. Anyone with the public key checks it with any
signed-note implementation (e.g. Go's golang.org/x/mod/sumdb/note).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass

from settlement.journal.canonical import format_time, parse_time
from settlement.journal.errors import InvalidCanonicalEntry
from settlement.journal.keys import PublicKey, SigningKey

SIGNATURE_PREFIX = "\u2014 "


class BadNote(ValueError):
    """A note that does not parse, or whose signature does not verify."""


@dataclass(frozen=True)
class CheckpointBody:
    origin: str
    tree_size: int
    root_hash: bytes
    chain_head: bytes
    created_at: dt.datetime

    def text(self) -> str:
        return (f"{self.origin}\n{self.tree_size}\n{_b64(self.root_hash)}\nchain {_b64(self.chain_head)}\n"
                f"time {format_time(self.created_at)}\n")


def sign_checkpoint(body: CheckpointBody, key: SigningKey) -> tuple[str, bytes]:
    """The signed note of ``body`` and the raw signature."""
    text = body.text()
    signature = key.sign(text.encode())
    public = key.public
    line = f"{SIGNATURE_PREFIX}{public.name} {_b64(public.key_hash + signature)}\n"
    return f"{text}\n{line}", signature


def open_checkpoint(note: str, key: PublicKey) -> CheckpointBody:
    """Check the note's signature by ``key`` and parse its body. Raises BadNote
    saying what is wrong (no signature by this key, bad signature, bad body)."""
    body, separator, signatures = note.rpartition("\n\n")
    if not separator or not signatures.endswith("\n"):
        raise BadNote("not a signed note: no blank line before the signatures")
    body += "\n"
    found_name = False
    for line in signatures[:-1].split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise BadNote(f"malformed signature line {line!r}")
        name, _, encoded = line[len(SIGNATURE_PREFIX):].rpartition(" ")
        try:
            blob = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise BadNote(f"signature line of {name!r} is not base64") from None
        if name != key.name or blob[:4] != key.key_hash:
            continue
        found_name = True
        if len(blob) == 68 and key.verify(blob[4:], body.encode()):
            return parse_body(body)
    if found_name:
        raise BadNote(f"the signature by key {key.name} ({key.key_id}) does not verify")
    raise BadNote(f"the note is not signed by key {key.name} ({key.key_id})")


def parse_body(text: str) -> CheckpointBody:
    lines = text.split("\n")
    if len(lines) != 6 or lines[-1] != "":
        raise BadNote("a checkpoint body has five lines")
    origin, size, root, chain, created = lines[:5]
    if not size.isdigit() or (size != "0" and size.startswith("0")):
        raise BadNote(f"tree size {size!r} is not a decimal number")
    if not chain.startswith("chain ") or not created.startswith("time "):
        raise BadNote("checkpoint extension lines must be 'chain ...' and 'time ...'")
    try:
        root_hash = base64.b64decode(root, validate=True)
        chain_head = base64.b64decode(chain[len("chain "):], validate=True)
        created_at = parse_time(created[len("time "):])
    except (binascii.Error, ValueError, InvalidCanonicalEntry) as exc:
        raise BadNote(f"malformed checkpoint body: {exc}") from None
    if len(root_hash) != 32 or len(chain_head) != 32:
        raise BadNote("root and chain hashes are 32 bytes")
    return CheckpointBody(origin, int(size), root_hash, chain_head, created_at)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
