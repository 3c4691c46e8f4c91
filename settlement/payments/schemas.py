"""API shapes of payments, merchants, refunds and payouts. Amounts are decimal
strings in the currency's own unit, always beside their currency; request models
refuse unknown fields."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from adapters.base import MethodKind, PaymentMethod
from settlement.money import format_minor
from settlement.payments.models import Merchant, Payment, PaymentAttempt, Payout

AMOUNT = r"^[0-9]{1,18}(\.[0-9]{1,18})?$"
Amount = Annotated[str, Field(pattern=AMOUNT, max_length=40, examples=["1500.00"],
                              description="Decimal string in the currency's unit; more decimals than the currency "
                                          "has are refused (too_many_decimals)")]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["RUB"])]
RailName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$", examples=["mir"])]
Metadata = Annotated[dict[str, Annotated[str, Field(max_length=500)]], Field(max_length=20)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- merchants -----------------------------------------------------------------------


class MerchantCreate(_Request):
    name: str = Field(min_length=1, max_length=200)
    settlement_currency: CurrencyCode
    commission_rate: Decimal | None = Field(default=None, ge=0, lt=1, max_digits=9, decimal_places=6,
                                            description="Fraction of each capture kept by the marketplace")
    external_id: str | None = Field(default=None, min_length=1, max_length=100)
    payout_rail: RailName | None = None
    payout_destination: str | None = Field(default=None, min_length=1, max_length=100,
                                           description="Card or account number, or wallet id, on the payout rail")
    payout_beneficiary: str | None = Field(default=None, max_length=200)
    metadata: Metadata = Field(default_factory=dict)


class MerchantUpdate(_Request):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    commission_rate: Decimal | None = Field(default=None, ge=0, lt=1, max_digits=9, decimal_places=6)
    payout_rail: RailName | None = None
    payout_destination: str | None = Field(default=None, min_length=1, max_length=100)
    payout_beneficiary: str | None = Field(default=None, max_length=200)
    metadata: Metadata | None = None


def _mask(destination: str | None) -> str | None:
    if not destination:
        return None
    return destination[:2] + "*" * max(len(destination) - 6, 0) + destination[-4:] if len(destination) > 6 else "****"


class MerchantOut(BaseModel):
    id: int
    name: str
    external_id: str | None
    settlement_currency: str
    commission_rate: str
    payout_rail: str | None
    payout_destination: str | None = Field(description="Masked")
    payout_beneficiary: str | None
    payable_account: str
    metadata: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, m: Merchant) -> MerchantOut:
        return cls(id=m.id, name=m.name, external_id=m.external_id, settlement_currency=m.settlement_currency,
                   commission_rate=str(m.commission_rate), payout_rail=m.payout_rail,
                   payout_destination=_mask(m.payout_destination), payout_beneficiary=m.payout_beneficiary,
                   payable_account=f"merchant:{m.id}:payable:{m.settlement_currency}", metadata=dict(m.meta or {}),
                   created_at=m.created_at, updated_at=m.updated_at)


class MerchantList(BaseModel):
    data: list[MerchantOut]
    next_cursor: str | None


class MerchantBalance(BaseModel):
    merchant_id: int
    account: str
    currency: str
    balance: str = Field(description="Posted payable")
    available: str = Field(description="Posted payable less payouts and refunds in flight")


# -- payments ------------------------------------------------------------------------


class CardMethod(_Request):
    type: Literal["card"]
    pan: str | None = Field(default=None, pattern=r"^[0-9]{12,19}$", description="Card number (never stored)")
    expiry: str | None = Field(default=None, pattern=r"^[0-9]{4}$", description="YYMM")
    token: str | None = Field(default=None, min_length=1, max_length=64)

    def method(self) -> PaymentMethod:
        return PaymentMethod(MethodKind.CARD, pan=self.pan, expiry=self.expiry, token=self.token)


class WalletMethod(_Request):
    type: Literal["wallet"]
    buyer_id: str = Field(min_length=1, max_length=64)

    def method(self) -> PaymentMethod:
        return PaymentMethod(MethodKind.WALLET, buyer_id=self.buyer_id)


MethodIn = Annotated[CardMethod | WalletMethod, Field(discriminator="type")]


class PaymentCreate(_Request):
    amount: Amount
    currency: CurrencyCode
    merchant_id: int = Field(ge=1)
    rail: RailName
    payment_method: MethodIn
    capture_method: Literal["automatic", "manual"] = "automatic"
    confirm: bool = Field(default=True, description="Authorize now; false leaves it requires_authorization")
    fx_quote_id: int | None = Field(default=None, ge=1, description="FX quote when the seller settles in "
                                                                    "another currency (default: a fresh quote)")
    description: str = Field(default="", max_length=500)
    buyer_reference: str | None = Field(default=None, max_length=200)
    metadata: Metadata = Field(default_factory=dict)


class AuthorizeIn(_Request):
    payment_method: MethodIn


class CaptureIn(_Request):
    amount: Amount | None = Field(default=None, description="Default: all that remains authorized")
    final: bool = Field(default=False, description="Release what remains authorized after this capture")


class VoidIn(_Request):
    reason: str = Field(default="", max_length=500)


class RefundCreate(_Request):
    amount: Amount | None = Field(default=None, description="Default: all that remains captured")
    reason: str = Field(default="", max_length=500)


class FxOut(BaseModel):
    quote_id: int
    settlement_currency: str
    rate: str
    mid_rate: str
    source: str


class PaymentOut(BaseModel):
    id: int
    state: str
    merchant_id: int
    rail: str
    amount: str
    currency: str
    capture_method: str
    amount_authorized: str
    amount_capturable: str
    amount_captured: str
    amount_voided: str
    amount_refunded: str
    commission: str = Field(description="Commission kept on what was captured, less what refunds gave back")
    settlement_currency: str
    seller_amount: str = Field(description="What the seller's payable got, less refunds, in its currency")
    fx: FxOut | None
    payment_method: str = Field(description="Masked card number or wallet id")
    rail_reference: str | None
    operation_in_progress: int | None
    failure_code: str | None
    failure_message: str | None
    description: str
    buyer_reference: str | None
    metadata: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, p: Payment) -> PaymentOut:
        c, s = p.currency, p.settlement_currency
        fx = None
        if p.fx_quote_id is not None:
            fx = FxOut(quote_id=p.fx_quote_id, settlement_currency=s, rate=str(p.fx_rate), mid_rate=str(p.fx_mid_rate),
                       source=p.fx_source or "")
        return cls(id=p.id, state=p.state, merchant_id=p.merchant_id, rail=p.rail, amount=format_minor(p.amount, c),
                   currency=c, capture_method=p.capture_method,
                   amount_authorized=format_minor(p.amount_authorized, c),
                   amount_capturable=format_minor(p.amount_authorized - p.amount_captured - p.amount_voided, c),
                   amount_captured=format_minor(p.amount_captured, c), amount_voided=format_minor(p.amount_voided, c),
                   amount_refunded=format_minor(p.amount_refunded, c),
                   commission=format_minor(p.commission_captured - p.commission_refunded, c),
                   settlement_currency=s, seller_amount=format_minor(p.seller_captured - p.seller_refunded, s),
                   fx=fx, payment_method=p.method_display, rail_reference=p.rail_reference,
                   operation_in_progress=p.in_flight_attempt_id, failure_code=p.failure_code,
                   failure_message=p.failure_message, description=p.description, buyer_reference=p.buyer_reference,
                   metadata=dict(p.meta or {}), created_at=p.created_at, updated_at=p.updated_at)


class PaymentList(BaseModel):
    data: list[PaymentOut]
    next_cursor: str | None


class OperationOut(BaseModel):
    """One operation sent to the rail (an attempt); refunds are operations too."""

    id: int
    payment_id: int
    operation: str
    state: str
    amount: str
    currency: str
    final: bool
    reason: str
    reference: str
    rail_reference: str | None
    response_code: str | None
    failure_code: str | None
    failure_message: str | None
    created_at: dt.datetime
    completed_at: dt.datetime | None

    @classmethod
    def of(cls, a: PaymentAttempt) -> OperationOut:
        return cls(id=a.id, payment_id=a.payment_id, operation=a.operation, state=a.state,
                   amount=format_minor(a.amount, a.currency), currency=a.currency, final=a.final, reason=a.reason,
                   reference=a.reference, rail_reference=a.rail_reference, response_code=a.response_code,
                   failure_code=a.failure_code, failure_message=a.failure_message, created_at=a.created_at,
                   completed_at=a.completed_at)


class OperationList(BaseModel):
    data: list[OperationOut]


# -- payouts -------------------------------------------------------------------------


class PayoutCreate(_Request):
    merchant_id: int = Field(ge=1)
    amount: Amount
    currency: CurrencyCode | None = Field(default=None, description="Default: the merchant's settlement currency")


class PayoutOut(BaseModel):
    id: int
    merchant_id: int
    state: str
    rail: str
    amount: str
    currency: str
    destination: str
    reference: str
    rail_reference: str | None
    failure_code: str | None
    failure_message: str | None
    created_at: dt.datetime
    completed_at: dt.datetime | None

    @classmethod
    def of(cls, p: Payout) -> PayoutOut:
        return cls(id=p.id, merchant_id=p.merchant_id, state=p.state, rail=p.rail,
                   amount=format_minor(p.amount, p.currency), currency=p.currency, destination=p.destination_display,
                   reference=p.reference, rail_reference=p.rail_reference, failure_code=p.failure_code,
                   failure_message=p.failure_message, created_at=p.created_at, completed_at=p.completed_at)


class PayoutList(BaseModel):
    data: list[PayoutOut]
    next_cursor: str | None


# -- cursors -------------------------------------------------------------------------


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The id a cursor continues after; None for the first page. A malformed cursor
    is refused (``invalid_cursor``)."""
    if cursor is None:
        return None
    from settlement.payments.errors import InvalidCursor

    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor("the cursor is not one this API returned", cursor=cursor[:100]) from None
    prefix, _, number = text.partition(":")
    if prefix != "id" or not number.isdigit() or len(number) > 18:
        raise InvalidCursor("the cursor is not one this API returned", cursor=cursor[:100])
    return int(number)


def next_cursor(rows: list[Any], limit: int) -> str | None:
    return encode_cursor(rows[-1].id) if len(rows) == limit else None
