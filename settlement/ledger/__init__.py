"""The double-entry ledger: every money movement of the service is an entry here.

Import the service and its vocabulary from this package::

    from settlement.ledger import Ledger, EntrySpec, debit, credit
"""

from settlement.ledger.errors import LedgerError
from settlement.ledger.models import AccountType, EntryKind, HoldStatus, Side
from settlement.ledger.service import Ledger, post_alone, post_batches
from settlement.ledger.types import (
    AccountLine,
    AccountRef,
    AccountSpec,
    AccountView,
    Balance,
    EntryResult,
    EntrySpec,
    HoldResult,
    HoldView,
    Page,
    PostingSpec,
    PostingView,
    credit,
    debit,
)

__all__ = [
    "AccountLine",
    "AccountRef",
    "AccountSpec",
    "AccountType",
    "AccountView",
    "Balance",
    "EntryKind",
    "EntryResult",
    "EntrySpec",
    "HoldResult",
    "HoldStatus",
    "HoldView",
    "Ledger",
    "LedgerError",
    "Page",
    "PostingSpec",
    "PostingView",
    "Side",
    "credit",
    "debit",
    "post_alone",
    "post_batches",
]
