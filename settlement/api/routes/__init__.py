"""Routers, one module per domain. :data:`ROUTERS` is what the app mounts."""

from __future__ import annotations

from fastapi import APIRouter

from settlement.api.routes import (
    exports,
    fx,
    health,
    journal,
    ledger,
    merchants,
    notifications,
    payments,
    payouts,
    reconciliation,
    webhooks,
)


def routers() -> list[APIRouter]:
    """Every router of the API, in mount order."""
    return [health.router, ledger.router, webhooks.router, merchants.router, payments.router, payouts.router,
            fx.router, notifications.router, journal.router, exports.router, reconciliation.router]
