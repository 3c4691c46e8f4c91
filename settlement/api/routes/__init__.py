"""Routers, one module per domain. :data:`ROUTERS` is what the app mounts."""

from __future__ import annotations

from fastapi import APIRouter

from settlement.api.routes import health, ledger, webhooks


def routers() -> list[APIRouter]:
    """Every router of the API, in mount order."""
    return [health.router, ledger.router, webhooks.router]
