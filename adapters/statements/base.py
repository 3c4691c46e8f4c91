"""What every bank statement parser yields, and the errors it raises.

A parser turns one statement file into a stream of items, in file order:

* :class:`StatementBalance`: a balance the bank reports for a statement (opening
  booked ``OPBD``, closing booked ``CLBD``, available ``CLAV``...);
* :class:`StatementLine`: one movement on our account;
* :class:`StatementLineError`: an entry or document that could not be read; the
  parser carries on with the next one.

Rules every parser follows:

* Amounts are ``int`` minor units of the ISO 4217 currency the bank names, never
  floats. A :class:`StatementLine` amount is always positive; :attr:`direction`
  says which way it moved (:attr:`StatementLine.signed_amount` applies the sign).
  A balance amount is signed (negative when the bank marks it as a debit balance).
* Text amounts are converted exactly (:func:`parse_amount`): ASCII digits, a dot
  as the decimal separator, at most as many decimals as the currency has (two for
  RUB and CNY, none for JPY, three for BHD). Anything else is an error item.
* Memory does not grow with the file: items are produced while reading.
* A file that is unusable as a whole (empty, not the format at all, unsafe XML,
  truncated or garbled beyond the first readable part) raises
  :class:`UnusableStatement`, a :class:`~adapters.base.MalformedFile`, so callers
  that already handle rail settlement files handle statements the same way.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import re
from dataclasses import dataclass
from decimal import Decimal

import moneyed

from adapters.base import MalformedFile

# -- vocabulary -------------------------------------------------------------------


class StatementFormat(enum.StrEnum):
    CAMT053 = "camt.053"
    CLIENT_BANK_EXCHANGE = "1CClientBankExchange"


class Direction(enum.StrEnum):
    """Which way money moved on *our* account (ISO 20022 ``CdtDbtInd``)."""

    CREDIT = "CRDT"   # money came in
    DEBIT = "DBIT"    # money went out


class EntryStatus(enum.StrEnum):
    """ISO 20022 entry status. Only BOOKED movements count towards booked balances."""

    BOOKED = "BOOK"
    PENDING = "PDNG"
    INFO = "INFO"
    FUTURE = "FUTR"


#: Balance type codes (ISO 20022 ``BalanceType12Code``) the balance check relies on.
OPENING_BOOKED = "OPBD"
PREVIOUSLY_CLOSED_BOOKED = "PRCD"
CLOSING_BOOKED = "CLBD"


# -- items ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StatementLine:
    """One movement on our account, normalised.

    ``line_number`` locates the movement in the file: for camt.053 the 1-based index
    of the ``Ntry`` element counted across the whole file, for 1CClientBankExchange
    the file line on which ``СекцияДокумент`` opens. ``sub_index`` is the 1-based
    position of the transaction inside a batch entry (camt.053 ``TxDtls``), or 0
    when the entry is not split. (line_number, sub_index) is unique in a file.

    ``amount`` is positive, in minor units of ``currency`` (the currency booked on
    the account). ``instructed_amount``/``instructed_currency`` carry the amount
    the payer instructed when the bank reports it (camt.053 ``InstdAmt``), for
    instance before a currency conversion.

    Counterparty fields describe the other side: the payer of a credit, the payee
    of a debit. References are empty strings when the bank did not send them.
    """

    format: StatementFormat
    account: str
    statement_id: str
    line_number: int
    sub_index: int
    amount: int
    currency: str
    direction: Direction
    status: EntryStatus
    booking_date: dt.date | None
    value_date: dt.date | None
    #: Bank's own reference of the movement (``AcctSvcrRef``).
    bank_reference: str = ""
    #: ``NtryRef``.
    entry_reference: str = ""
    end_to_end_id: str = ""
    instruction_id: str = ""
    transaction_id: str = ""
    payment_information_id: str = ""
    message_id: str = ""
    uetr: str = ""
    #: Payment document number and date (1C ``Номер``, ``Дата``).
    document_number: str = ""
    document_date: dt.date | None = None
    #: 1C document kind (``Платежное поручение``), or the camt.053 bank transaction
    #: code as ``Domain/Family/SubFamily`` or the proprietary code.
    document_type: str = ""
    counterparty_name: str = ""
    counterparty_account: str = ""
    #: BIC (camt.053) or БИК (1C) of the counterparty's bank.
    counterparty_bank: str = ""
    #: Russian taxpayer id (ИНН), 1C only.
    counterparty_tax_id: str = ""
    #: Unstructured remittance text (``Ustrd`` lines joined, ``НазначениеПлатежа``).
    remittance: str = ""
    #: Purpose code (camt.053 ``Purp/Cd`` or ``Purp/Prtry``).
    purpose: str = ""
    instructed_amount: int | None = None
    instructed_currency: str | None = None
    #: camt.053 ``RvslInd``: this entry reverses an earlier one (``direction`` is
    #: still the way this entry moved money).
    reversal: bool = False

    @property
    def signed_amount(self) -> int:
        """``amount`` with the sign of the movement on our account (debits negative)."""
        return self.amount if self.direction is Direction.CREDIT else -self.amount


@dataclass(frozen=True, slots=True, kw_only=True)
class StatementBalance:
    """A balance the bank states for ``account`` in statement ``statement_id``.

    ``type_code`` is the ISO 20022 balance type (``OPBD`` opening booked, ``CLBD``
    closing booked, ``PRCD`` previously closed booked, ``CLAV`` closing
    available...); 1CClientBankExchange ``НачальныйОстаток`` maps to ``OPBD`` and
    ``КонечныйОстаток`` to ``CLBD``. ``amount`` is signed minor units.
    """

    format: StatementFormat
    account: str
    statement_id: str
    line_number: int
    type_code: str
    amount: int
    currency: str
    date: dt.date | None


@dataclass(frozen=True, slots=True, kw_only=True)
class StatementLineError:
    """An entry, document or line that could not be read.

    ``line_number`` follows :class:`StatementLine` (camt.053 entry index, 1C file
    line); for a statement-level problem in camt.053 it is 0. ``field`` names the
    element path (``Ntry/Amt``) or 1C key (``Сумма``) at fault.
    """

    format: StatementFormat
    line_number: int
    field: str
    reason: str
    statement_id: str = ""
    sub_index: int = 0
    raw: str = ""


StatementItem = StatementLine | StatementBalance | StatementLineError


# -- errors -----------------------------------------------------------------------


class UnusableStatement(MalformedFile):
    """The statement file as a whole cannot be used. ``line_number`` and
    ``field_name`` say where reading stopped, when that is known."""

    code = "statement_unusable"


class UnknownStatementFormat(UnusableStatement):
    """The file is neither camt.053 XML nor 1CClientBankExchange text."""

    code = "statement_format_unknown"


class UnsafeStatement(UnusableStatement):
    """The XML carries a DTD, an entity declaration or an external reference.
    Statements never need them, so they are refused before anything is expanded."""

    code = "statement_xml_unsafe"


class AmountError(ValueError):
    """A text amount is not an exact amount of its currency."""


# -- amounts ----------------------------------------------------------------------

_AMOUNT = re.compile(r"(-?)([0-9]{1,18})(?:\.([0-9]+))?")


@functools.lru_cache(maxsize=64)
def currency_exponent(currency: str) -> int:
    """Decimal places of ``currency`` per ISO 4217 (from py-moneyed's table).

    Raises :class:`AmountError` for a code that is not an ISO 4217 currency.
    """
    if len(currency) != 3 or not currency.isascii() or not currency.isupper():
        raise AmountError(f"{currency!r} is not an ISO 4217 currency code")
    try:
        sub_unit = int(moneyed.get_currency(currency).sub_unit)
    except moneyed.CurrencyDoesNotExist:
        raise AmountError(f"{currency!r} is not an ISO 4217 currency code") from None
    exponent = len(str(sub_unit)) - 1
    if sub_unit != 10**exponent:
        raise AmountError(f"{currency} has a minor unit that is not a power of ten")
    return exponent


def parse_amount(text: str, currency: str, *, signed: bool = False) -> int:
    """Exact minor units of ``text`` in ``currency``: ``"1234.56"`` RUB -> 123456.

    Accepts ASCII digits with an optional ``.`` and at most
    :func:`currency_exponent` decimals (``"1234.5"`` and ``"1234"`` are fine for
    RUB, ``"1.234"`` is refused). A leading ``-`` only when ``signed``. No
    exponents, spaces, commas or thousands separators.
    """
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise AmountError(f"{text!r} is not a decimal amount")
    sign, whole, fraction = match.groups()
    if sign and not signed:
        raise AmountError(f"{text!r}: amounts here carry no sign")
    exponent = currency_exponent(currency)
    fraction = fraction or ""
    if len(fraction) > exponent:
        raise AmountError(f"{text!r} has more than {exponent} decimals for {currency}")
    minor = int(Decimal(f"{whole}.{fraction or '0'}").scaleb(exponent))
    return -minor if sign else minor


def format_amount(minor: int, currency: str) -> str:
    """The inverse of :func:`parse_amount`: 123456 RUB -> ``"1234.56"``."""
    exponent = currency_exponent(currency)
    return str(Decimal(minor).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent)))
