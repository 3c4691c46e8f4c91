"""UnionPay ACP 5.1.0 vocabulary: transaction types, business types, response codes,
endpoint paths and the simulator's documented test cards.

Values follow the public ACP ("全渠道平台接入接口规范") conventions. Where the
simulator goes beyond what the real gateway does, the constant says so.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Final

from adapters.base import FeeSchedule, SettlementCalendar

RAIL: Final = "unionpay"
CURRENCY: Final = "CNY"
CURRENCY_CODE: Final = "156"          # ISO 4217 numeric for CNY, as ACP sends it
VERSION: Final = "5.1.0"
ENCODING: Final = "UTF-8"
SIGN_METHOD_RSA: Final = "01"         # SHA-256 digest, then SHA256withRSA
ACCESS_TYPE_MERCHANT: Final = "0"     # the merchant connects directly
CHANNEL_INTERNET: Final = "07"

#: 0.6% merchant discount rate, no fixed part; refunds do not return the fee.
FEES: Final = FeeSchedule(rate=Decimal("0.006"))
#: Funds reach the merchant the business day after clearing (T+1).
CALENDAR: Final = SettlementCalendar(lag_days=1, business_days_only=True, sla_days=2)

#: ACP timestamps (txnTime, traceTime, settleDate) are Beijing time.
BEIJING: Final = dt.timezone(dt.timedelta(hours=8), "CST")


class TxnType:
    """``txnType``: what a message does."""

    QUERY: Final = "00"
    PURCHASE: Final = "01"            # 消费: authorize and capture in one message
    PREAUTH: Final = "02"             # 预授权: hold funds
    PREAUTH_COMPLETE: Final = "03"    # 预授权完成: capture (part of) a hold
    REFUND: Final = "04"              # 退货
    PAYOUT: Final = "12"              # 代付: pay out to a card or account
    PURCHASE_CANCEL: Final = "31"     # 消费撤销: same-day void of a purchase
    PREAUTH_CANCEL: Final = "32"      # 预授权撤销: release what is still held
    FILE_DOWNLOAD: Final = "76"       # 文件传输: settlement file download


class BizType:
    """``bizType``: the product a message belongs to."""

    NONE: Final = "000000"            # query and file download
    B2C_GATEWAY: Final = "000201"     # browser (front) payment
    NO_REDIRECT: Final = "000301"     # card-not-present payment from the merchant's backend
    PAYOUT: Final = "000401"          # 代付


class RespCode:
    """``respCode`` values the adapter treats specially; every other non-"00" code is a
    decline carrying the code as sent."""

    SUCCESS: Final = "00"
    TIMEOUT: Final = "03"             # 交易通讯超时, ask queryTrans
    UNKNOWN: Final = "04"             # 交易状态未明, ask queryTrans
    ACCEPTED: Final = "05"            # 交易已受理, the outcome follows by notification
    BUSY: Final = "06"                # 系统繁忙: nothing happened
    CLOSED: Final = "02"              # 系统未开放或暂时关闭: nothing happened
    FORMAT: Final = "10"              # 报文格式错误
    SIGNATURE: Final = "11"           # 验证签名失败
    DUPLICATE: Final = "12"           # 重复交易
    MISSING: Final = "13"             # 报文交易要素缺失
    AMOUNT_LIMIT: Final = "33"        # 交易金额超限
    NOT_FOUND: Final = "34"           # 查无此交易
    BAD_STATE: Final = "35"           # 原交易不存在或状态不正确
    MISMATCH: Final = "36"            # 与原交易信息不符
    FILE_MISSING: Final = "98"        # 文件不存在


RESP_MESSAGES: Final[dict[str, str]] = {
    "00": "成功[0000000]",
    "03": "交易通讯超时，请发起查询交易",  # noqa: RUF001 - the gateway's own punctuation
    "04": "交易状态未明，请查询对账结果",  # noqa: RUF001 - the gateway's own punctuation
    "05": "交易已受理，请稍后查询交易结果",  # noqa: RUF001 - the gateway's own punctuation
    "06": "系统繁忙，请稍后再试",  # noqa: RUF001 - the gateway's own punctuation
    "10": "报文格式错误",
    "11": "验证签名失败",
    "12": "重复交易",
    "13": "报文交易要素缺失",
    "33": "交易金额超限",
    "34": "查无此交易",
    "35": "原交易不存在或状态不正确",
    "36": "与原交易信息不符",
    "61": "输入的卡号无效，请确认后输入",  # noqa: RUF001 - the gateway's own punctuation
    "63": "卡状态不正确",
    "64": "卡上的余额不足",
    "65": "输入的密码、有效期或CVN2有误，交易失败",  # noqa: RUF001 - the gateway's own punctuation
    "73": "支付卡已超过有效期",
    "98": "文件不存在",
}

#: Codes after which the outcome is unknown and only queryTrans can tell.
OUTCOME_UNKNOWN: Final = frozenset({RespCode.TIMEOUT, RespCode.UNKNOWN})
#: Codes that mean the gateway did nothing; the same request may be sent again.
NOTHING_HAPPENED: Final = frozenset({RespCode.BUSY, RespCode.CLOSED})

#: Paths of the simulated gateway (the real gateway's are the same under its host).
PATH_FRONT: Final = "/gateway/api/frontTransReq.do"
PATH_BACK: Final = "/gateway/api/backTransReq.do"
PATH_QUERY: Final = "/gateway/api/queryTrans.do"
PATH_FILE: Final = "/gateway/api/fileTransfer.do"

#: Organisation the gateway's signing certificate must name (the real SDK checks it in
#: the certificate's subject, so a merchant certificate from the same CA cannot sign
#: as the gateway).
GATEWAY_ORGANIZATION: Final = "中国银联股份有限公司"


class TestCards:
    """Card numbers and amounts the simulator answers in a documented way.

    Cards (all Luhn-valid UnionPay BIN 621626):

    * ``APPROVE`` 6216261000000000018, UnionPay's published ACP test debit card: approved.
    * ``INSUFFICIENT_FUNDS`` ...0646: respCode 64 (卡上的余额不足).
    * ``CARD_BLOCKED`` ...0638: respCode 63 (卡状态不正确).
    * ``CARD_EXPIRED`` ...0737: respCode 73; so does any card whose expiry is past.
    * ``WRONG_CVN`` ...0653: respCode 65.
    * any other Luhn-valid 62... card is approved; anything else answers 61.

    Amounts in fen, by the last two digits (purchase, pre-authorization, payout):

    * ``..03``: respCode 03 (timeout); the gateway did approve it, queryTrans says so.
    * ``..05``: respCode 05 (accepted); approved a moment later, with a notification.
    * ``..06``: respCode 06 (busy); nothing happened.
    * ``..33``: respCode 33 (amount over the limit).
    """

    __test__ = False   # not a pytest class, despite the name

    APPROVE: Final = "6216261000000000018"
    INSUFFICIENT_FUNDS: Final = "6216261000000000646"
    CARD_BLOCKED: Final = "6216261000000000638"
    CARD_EXPIRED: Final = "6216261000000000737"
    WRONG_CVN: Final = "6216261000000000653"

    DECLINES: Final[dict[str, str]] = {
        INSUFFICIENT_FUNDS: "64",
        CARD_BLOCKED: "63",
        CARD_EXPIRED: "73",
        WRONG_CVN: "65",
    }
    AMOUNT_TRIGGERS: Final[dict[int, str]] = {3: "03", 5: "05", 6: "06", 33: "33"}
