"""FX tasks: load a new rate snapshot from the configured source."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from settlement.config import get_settings
from settlement.fx import service
from settlement.fx.sources import source_from_setting
from settlement.tasks.base import DatabaseTask

log = logging.getLogger("settlement.fx")


@shared_task(base=DatabaseTask, bind=True, name="settlement.fx.refresh_rates")
def refresh_rates(self: Any) -> int:
    """Store a snapshot from ``SETTLEMENT_FX_RATES_SOURCE``; returns how many rates
    (0 when no source is configured)."""
    setting = get_settings().fx_rates_source
    if not setting:
        return 0
    from settlement.payments.rails import process_rails

    source = source_from_setting(setting, process_rails().get)
    with self.unit_of_work() as session:
        return len(service.refresh(session, source))
