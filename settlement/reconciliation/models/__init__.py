"""Reconciliation tables.

* ``recon_files``: every settlement file or bank statement received, unique by its
  SHA-256 (the same bytes again are recognised, never applied twice), with its
  rail, kind, size, where its bytes are kept, and how far loading has got
  (``loaded_items``: how many parsed items are loaded, the checkpoint a resumed
  load skips).
* ``recon_file_items``: the file's records, one row per parsed line, loaded with
  COPY (PostgreSQL) in chunks; ``recon_statement_lines`` the same for statements;
  ``recon_file_errors``: lines that could not be read (line number, field, reason),
  and for a file unusable as a whole one more item, field ``file``: where reading
  stopped and why.
* ``recon_expectations``: what a rail owes us (or we owe through it) for one
  capture, refund or payout: amount, keys, expected settlement date and the date
  after which it counts as missing. It is settled once a match claims it (a claimed
  link); ``status`` leaves ``open`` only when finance writes it off or ignores it.
* ``recon_runs`` and ``recon_run_steps``: one reconciliation of one file, its steps
  (load, match, book) with their progress: the checkpoints a restarted run resumes
  from.
* ``recon_matches``: one outcome of a run (matched, fee variance, FX variance,
  amount mismatch, missing, unexpected, duplicate, late) with its amounts, and the
  link tables naming the expectations, items, statement lines and settlement
  batches it covers. A link is ``claimed`` when it settles its counterpart: a
  partial unique index lets each expectation, item, line and batch be claimed once.
* ``recon_bookings``: the ledger entry that booked one chunk of a run's matches.
* ``recon_settlement_batches``: what a rail pays into the bank for one settlement
  date and currency (the net of a file), matched later against statement lines.
* ``recon_exceptions``, ``recon_exception_actions`` and ``recon_writeoff_approvals``:
  the queue finance works through, every action with who, when and why, and the
  second signature large write-offs need (a CHECK refuses approving one's own).
"""

from __future__ import annotations

import enum


class FileKind(enum.StrEnum):
    SETTLEMENT = "settlement"
    STATEMENT = "statement"


class FileStatus(enum.StrEnum):
    REGISTERED = "registered"    # stored, not read yet
    LOADING = "loading"          # some chunks loaded (a crash resumes after the checkpoint)
    LOADED = "loaded"
    UNUSABLE = "unusable"        # the file as a whole could not be read (error_code says why)


class ExpectationKind(enum.StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"
    PAYOUT = "payout"


class ExpectationStatus(enum.StrEnum):
    """What finance decided about an expectation. Whether a file line settled it is
    not a status but a fact of the match tables: a claimed ``recon_match_expectations``
    row (see ``settlement.reconciliation.service.runs.UNSETTLED``), so that
    matching a million lines writes no million updates."""

    OPEN = "open"
    WRITTEN_OFF = "written_off"
    IGNORED = "ignored"


class RunStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class Step(enum.StrEnum):
    LOAD = "load"
    MATCH = "match"
    BOOK = "book"


class Outcome(enum.StrEnum):
    MATCHED = "matched"
    FEE_VARIANCE = "fee_variance"
    FX_VARIANCE = "fx_variance"
    LATE = "late"
    AMOUNT_MISMATCH = "amount_mismatch"
    MISSING = "missing_in_file"
    UNEXPECTED = "unexpected_in_file"
    DUPLICATE = "duplicate"

    @property
    def settles(self) -> bool:
        """Whether a match with this outcome is booked by the run."""
        return self in (Outcome.MATCHED, Outcome.FEE_VARIANCE, Outcome.FX_VARIANCE, Outcome.LATE)

    @property
    def pairs(self) -> bool:
        """Whether the outcome pairs file lines with expectations (and claims both)."""
        return self.settles or self is Outcome.AMOUNT_MISMATCH


class ExceptionStatus(enum.StrEnum):
    OPEN = "open"
    PENDING_APPROVAL = "pending_approval"
    RESOLVED = "resolved"


class Resolution(enum.StrEnum):
    MANUAL_MATCH = "manual_match"
    WRITE_OFF = "write_off"
    IGNORE = "ignore"
    ARRIVED_LATE = "arrived_late"


class ApprovalStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


from settlement.reconciliation.models.files import FileError, FileItem, ReconFile, StatementLine  # noqa: E402
from settlement.reconciliation.models.matching import (  # noqa: E402
    Booking,
    Expectation,
    Match,
    MatchBatch,
    MatchExpectation,
    MatchItem,
    MatchLine,
    Run,
    RunStep,
    SettlementBatch,
)
from settlement.reconciliation.models.queue import ExceptionAction, ReconException, WriteOffApproval  # noqa: E402

__all__ = [
    "ApprovalStatus", "Booking", "ExceptionAction", "ExceptionStatus", "Expectation", "ExpectationKind",
    "ExpectationStatus", "FileError", "FileItem", "FileKind", "FileStatus", "Match", "MatchBatch",
    "MatchExpectation", "MatchItem", "MatchLine", "Outcome", "ReconException", "ReconFile", "Resolution", "Run",
    "RunStatus", "RunStep", "SettlementBatch", "StatementLine", "Step", "WriteOffApproval",
]
