"""Bank statement parsers: ISO 20022 camt.053 and 1CClientBankExchange.

They confirm that net settlements actually reached the bank account. Every parser
streams :class:`StatementLine`, :class:`StatementBalance` and
:class:`StatementLineError` items (see :mod:`adapters.statements.base` for the
rules); :func:`parse_statement` picks the parser from the file's first bytes and
:class:`BalanceCheck` confirms opening + movements = closing.
"""

from adapters.statements.balances import BalanceCheck, BalanceResult
from adapters.statements.base import (
    CLOSING_BOOKED,
    OPENING_BOOKED,
    PREVIOUSLY_CLOSED_BOOKED,
    AmountError,
    Direction,
    EntryStatus,
    StatementBalance,
    StatementFormat,
    StatementItem,
    StatementLine,
    StatementLineError,
    UnknownStatementFormat,
    UnsafeStatement,
    UnusableStatement,
    currency_exponent,
    format_amount,
    parse_amount,
)
from adapters.statements.camt053 import parse_camt053
from adapters.statements.client_bank_exchange import parse_client_bank_exchange
from adapters.statements.dispatch import parse_statement

__all__ = [
    "CLOSING_BOOKED",
    "OPENING_BOOKED",
    "PREVIOUSLY_CLOSED_BOOKED",
    "AmountError",
    "BalanceCheck",
    "BalanceResult",
    "Direction",
    "EntryStatus",
    "StatementBalance",
    "StatementFormat",
    "StatementItem",
    "StatementLine",
    "StatementLineError",
    "UnknownStatementFormat",
    "UnsafeStatement",
    "UnusableStatement",
    "currency_exponent",
    "format_amount",
    "parse_amount",
    "parse_camt053",
    "parse_client_bank_exchange",
    "parse_statement",
]
