"""The console's pages, one module per area."""

from __future__ import annotations

from fastapi import APIRouter

from settlement.console.routes import auth, exceptions, exports, ledger, runs, static


def routers() -> list[APIRouter]:
    return [auth.router, static.router, runs.router, exceptions.router, ledger.router, exports.router]
