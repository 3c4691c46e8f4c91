"""The settlement file's columns, type letters and the parser's limits (the layout
itself is described in :mod:`.files`)."""

from __future__ import annotations

from adapters.base import RecordType

COLUMNS: tuple[str, ...] = (
    "Partner_transaction_id", "Transaction_id", "Amount", "Rmb_amount", "Fee", "Settlement",
    "Rmb_settlement", "Currency", "Rate", "Payment_time", "Settlement_time", "Type", "Status", "Remarks",
)
HEADER = "|".join(COLUMNS)

TYPE_CODES: dict[str, RecordType] = {
    "P": RecordType.PAYMENT, "R": RecordType.REFUND, "C": RecordType.CHARGEBACK,
    "A": RecordType.ADJUSTMENT, "T": RecordType.PAYOUT,
}
TYPE_LETTERS: dict[RecordType, str] = {kind: letter for letter, kind in TYPE_CODES.items()}

#: Bytes read per chunk: large enough that per-read costs vanish, small enough to be flat.
CHUNK_BYTES = 64 << 10
#: Longest line read as a line; anything longer is an error, not a memory spike.
MAX_LINE_BYTES = 4096
#: More consecutive bad lines than this and the file is garbage, not a file with errors.
MAX_CONSECUTIVE_ERRORS = 1000
#: Bytes skipped to find the end of one over-long line before giving up on the file.
MAX_SKIP_BYTES = 1 << 20
