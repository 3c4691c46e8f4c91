"""The journal's refusals, each with one stable code."""

from __future__ import annotations

from settlement.errors import SettlementError, register


@register
class JournalError(SettlementError):
    code = "journal_error"
    status = 422
    title = "The journal refused the operation"


@register
class SigningKeyMissing(JournalError):
    """No Ed25519 signing key is configured. Checkpoints and export manifests are
    signed; the service never generates a key on its own. Create one with
    ``settlement journal keygen --out FILE`` and set
    ``SETTLEMENT_JOURNAL_SIGNING_KEY_FILE`` (or ``SETTLEMENT_JOURNAL_SIGNING_KEY``)."""

    code = "signing_key_missing"
    status = 503
    title = "No journal signing key is configured"


@register
class InvalidSigningKey(JournalError):
    """The configured signing key, or a public key given to verify with, is not an
    Ed25519 key in PEM form."""

    code = "invalid_signing_key"
    status = 500
    title = "The journal key is not a usable Ed25519 key"


@register
class CheckpointNotFound(JournalError):
    """No signed checkpoint has this tree size (or none exists yet)."""

    code = "checkpoint_not_found"
    status = 404
    title = "No such checkpoint"


@register
class EntryNotSealed(JournalError):
    """The entry exists but is not (yet) in the journal, or not in the checkpoint
    asked for: it was sealed after it."""

    code = "entry_not_sealed"
    status = 409
    title = "The entry is not sealed in that checkpoint"


@register
class InvalidRange(JournalError):
    """A consistency proof needs 1 <= from <= to, both tree sizes of checkpoints."""

    code = "invalid_range"
    status = 422
    title = "Invalid tree size range"


@register
class InvalidCanonicalEntry(JournalError):
    """A value cannot be put in the canonical encoding (wrong type or shape)."""

    code = "invalid_canonical_entry"
    title = "The entry does not fit the canonical encoding"


@register
class KeyFileExists(JournalError):
    """``keygen`` refuses to overwrite an existing key file (use ``--force``)."""

    code = "key_file_exists"
    status = 409
    title = "The key file already exists"


@register
class JournalInconsistent(JournalError):
    """The stored tree does not extend the previous signed checkpoint: journal
    tables were altered. Nothing is signed until it is investigated."""

    code = "journal_inconsistent"
    status = 500
    title = "The journal does not extend its last checkpoint"
