"""Every table of the service, imported in one place so Alembic sees the whole
schema. Each domain package adds its ``models`` module here."""

from __future__ import annotations

from settlement.api import idempotency as idempotency_models
from settlement.auth import models as auth_models
from settlement.console import models as console_models
from settlement.db.base import Base
from settlement.exports import models as export_models
from settlement.fx import models as fx_models
from settlement.journal import models as journal_models
from settlement.ledger import models as ledger_models
from settlement.payments import models as payments_models
from settlement.reconciliation import models as reconciliation_models
from settlement.webhooks import models as webhook_models

metadata = Base.metadata

__all__ = ["auth_models", "console_models", "export_models", "fx_models", "idempotency_models", "journal_models",
           "ledger_models", "metadata", "payments_models", "reconciliation_models", "webhook_models"]
