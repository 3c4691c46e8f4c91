"""Payments: merchants (sellers), payment intents and their attempts against a rail,
the lifecycle (authorize, capture, void, refund), the marketplace split at capture,
payouts to sellers, the janitor that settles operations whose outcome was lost, and
the intake of the rails' notifications.

Every money movement is a ledger entry; the chart of accounts and the booking rules
are in :mod:`settlement.payments.accounts`.
"""
