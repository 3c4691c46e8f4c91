"""The layout of a ZM record (全渠道商户对账文件, ZM file): 42 fixed-width fields.

Widths are in *bytes* of GBK text and fields are separated by one space, so a record
is 566 + 41 = 607 bytes before its line break. Numbers are zero-padded on the left;
text is padded with spaces on the right. Chinese text (sub-merchant names) takes two
bytes a character, which is why records are sliced as bytes before any decoding.

How each field becomes a :class:`~adapters.base.SettlementRecord`:

* ``rail_reference``: 27 原交易查询流水号 (``origQryId``) when set, else 10 查询流水号
  (``queryId``): the original transaction's queryId, as our results report it.
* ``reference``: 41 原始交易订单号 when set, else 12 商户订单号 (``orderId``): our
  reference of the original payment.
* ``rrn``: 4 系统跟踪号 + 5 交易传输时间 (``traceNo`` + ``traceTime``, 16 digits), the
  pair notifications also carry.
* ``gross``: 7 交易金额 in fen, signed by the direction of 17 结算金额 (C credits the
  merchant: positive; D debits: negative, as for refunds and chargebacks).
* ``fee``: 16 商户手续费, D (charged to the merchant) positive, C (returned) negative.
* ``net``: 33 清算净额, C positive, D negative; a line whose gross - fee is not its net
  is an error.
* ``record_type``: from 1 交易代码 (table below), else from 20 交易类型 (``txnType``).
* ``transaction_date``: the month and day of 5 交易传输时间 (MMDDhhmmss, Beijing
  time), in the latest year that puts it on or before the clearing date.
* ``settlement_date``: the clearing date (清算日期). Real ZM lines do not carry it (the
  file name and the fileTransfer ``settleDate`` do); our writer puts it as YYYYMMDD
  in the first 8 bytes of 42 保留使用, and the parser falls back on the file name.
* ``currency``: always CNY; the ZM file carries no currency field.

Where we are unsure:

* 交易代码 values. We use S22 消费 (purchase), S24 预授权完成 (completion), S30 消费撤销
  (cancel), S33 退货 (refund), S46 代付 (payout), E74 for chargebacks and E80 for
  adjustments. Real chargebacks come in the separate ZME error file; carrying them in
  ZM with E74 is our convention. Because of this doubt an unknown code falls back on
  交易类型, whose values are the API's own.
* The C/D direction letter opening the 13-byte amounts (16, 17, 32, 33, 36, 37): we
  read them as one direction letter and 12 digits.
* 41 原始交易订单号 (32) and 42 保留使用 (98): the public SDK names only the widths
  after field 40; their meanings here are our reading.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.base import RecordType


@dataclass(frozen=True, slots=True)
class ZmField:
    number: int
    key: str
    name: str
    width: int
    start: int
    #: Free text that the writer may shorten (at a character boundary) to fit.
    text: bool = False

    @property
    def end(self) -> int:
        return self.start + self.width


_SPEC: tuple[tuple[str, str, int], ...] = (
    ("txnCode", "交易代码", 3),
    ("acqInsCode", "代理机构标识码", 11),
    ("sendInsCode", "发送机构标识码", 11),
    ("traceNo", "系统跟踪号", 6),
    ("traceTime", "交易传输时间", 10),
    ("accNo", "主账号", 19),
    ("txnAmt", "交易金额", 12),
    ("merCatCode", "商户类别", 4),
    ("termType", "终端类型", 2),
    ("queryId", "查询流水号", 21),
    ("payTypeOld", "支付方式（旧）", 2),  # noqa: RUF001 - the specification's own name
    ("orderId", "商户订单号", 32),
    ("payCardType", "支付卡类型", 2),
    ("origTraceNo", "原始交易的系统跟踪号", 6),
    ("origTraceTime", "原始交易日期时间", 10),
    ("merFee", "商户手续费", 13),
    ("settleAmt", "结算金额", 13),
    ("payType", "支付方式", 4),
    ("groupMerId", "集团商户代码", 15),
    ("txnType", "交易类型", 2),
    ("txnSubType", "交易子类", 2),
    ("bizType", "业务类型", 6),
    ("accType", "账号类型", 2),
    ("billType", "账单类型", 4),
    ("billNo", "账单号码", 32),
    ("interactMode", "交互方式", 1),
    ("origQryId", "原交易查询流水号", 21),
    ("merId", "商户代码", 15),
    ("splitMode", "分账入账方式", 1),
    ("subMerId", "二级商户代码", 15),
    ("subMerAbbr", "二级商户简称", 32),
    ("subMerAmt", "二级商户分账入账金额", 13),
    ("netAmt", "清算净额", 13),
    ("termId", "终端号", 8),
    ("merReserved", "商户自定义域", 32),
    ("discountAmt", "优惠金额", 13),
    ("invoiceAmt", "发票金额", 13),
    ("installmentFee", "分期付款附加手续费", 12),
    ("installmentNum", "分期付款期数", 2),
    ("txnMedium", "交易介质", 1),
    ("origOrderId", "原始交易订单号", 32),
    ("reserved", "保留使用", 98),
)
_TEXT = frozenset({"subMerAbbr", "merReserved", "billNo"})


def _build() -> tuple[ZmField, ...]:
    fields = []
    start = 0
    for number, (key, name, width) in enumerate(_SPEC, 1):
        fields.append(ZmField(number, key, name, width, start, key in _TEXT))
        start += width + 1
    return tuple(fields)


FIELDS: tuple[ZmField, ...] = _build()
BY_KEY: dict[str, ZmField] = {f.key: f for f in FIELDS}
RECORD_LENGTH = FIELDS[-1].end            # 607 bytes, without the line break
SEPARATOR = b" "
#: Lines may omit the trailing reserved field (some writers trim trailing blanks).
MIN_RECORD_LENGTH = BY_KEY["origOrderId"].end

#: 交易代码 -> record type (see the module docstring for our doubts).
TYPE_BY_CODE: dict[str, RecordType] = {
    "S22": RecordType.PAYMENT,
    "S24": RecordType.PAYMENT,
    "S30": RecordType.REFUND,
    "S33": RecordType.REFUND,
    "S46": RecordType.PAYOUT,
    "E74": RecordType.CHARGEBACK,
    "E80": RecordType.ADJUSTMENT,
}
#: 交易类型 -> record type, for codes not in :data:`TYPE_BY_CODE`.
TYPE_BY_TXN_TYPE: dict[str, RecordType] = {
    "01": RecordType.PAYMENT,
    "03": RecordType.PAYMENT,
    "04": RecordType.REFUND,
    "31": RecordType.REFUND,
    "33": RecordType.REFUND,
    "12": RecordType.PAYOUT,
}
#: What the writer puts for each record type: (交易代码, txnType, txnSubType, bizType).
WRITE_CODES: dict[RecordType, tuple[str, str, str, str]] = {
    RecordType.PAYMENT: ("S22", "01", "01", "000301"),
    RecordType.REFUND: ("S33", "04", "00", "000301"),
    RecordType.CHARGEBACK: ("E74", "", "", ""),
    RecordType.ADJUSTMENT: ("E80", "", "", ""),
    RecordType.PAYOUT: ("S46", "12", "00", "000401"),
}


def field_at(offset: int) -> ZmField:
    """The field holding byte ``offset`` of a record (a separator counts for the field
    before it)."""
    for f in FIELDS:
        if offset <= f.end:
            return f
    return FIELDS[-1]
