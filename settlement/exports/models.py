"""Export jobs: one row per export asked for over the API (the CLI writes straight
to a directory and keeps no row). The archive itself lives under
``SETTLEMENT_DATA_DIR/exports/<id>/``."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Identity, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from settlement.db.base import Base
from settlement.db.types import BigId, JsonDoc, UTCDateTime


class ExportStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ExportJob(Base):
    __tablename__ = "export_jobs"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'running', 'done', 'failed')", name="status"),
        CheckConstraint("format IN ('csv', 'jsonl', 'xml')", name="format"),
    )

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=ExportStatus.PENDING.value)
    format: Mapped[str] = mapped_column(String(8))
    period_from: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    period_to: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: Reporting currency and exchange rates (XML), as given.
    options: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    #: The API key that asked for it.
    requested_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    tree_size: Mapped[int | None] = mapped_column(BigInteger)
    entries: Mapped[int | None] = mapped_column(BigInteger)
    postings: Mapped[int | None] = mapped_column(BigInteger)
    archive_name: Mapped[str | None] = mapped_column(String(200))
    archive_sha256: Mapped[str | None] = mapped_column(String(64))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
