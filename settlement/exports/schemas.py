"""API shapes of export jobs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from settlement.exports.errors import InvalidExchangeRate
from settlement.exports.models import ExportJob
from settlement.exports.service import ExportRequest


class ExportCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    period_from: dt.datetime | None = Field(default=None, alias="from",
                                            description="Start of the period (recorded time), inclusive")
    period_to: dt.datetime | None = Field(default=None, alias="to",
                                          description="End, exclusive; omitted: as of the latest checkpoint")
    format: Literal["csv", "jsonl", "xml"] = "csv"
    reporting_currency: str | None = Field(default=None, min_length=3, max_length=3,
                                           description="SAF-T: the currency of Amount and the totals")
    rates: dict[str, str] = Field(default_factory=dict, description="SAF-T: reporting units per unit, as "
                                                                    "decimal strings, e.g. {\"CNY\": \"12.5\"}")

    @field_validator("period_from", "period_to")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value

    def request(self) -> ExportRequest:
        rates: dict[str, Decimal] = {}
        for currency, text in self.rates.items():
            try:
                rates[currency] = Decimal(text)
            except InvalidOperation:
                raise InvalidExchangeRate(f"rate for {currency} is not a decimal string", currency=currency) from None
        return ExportRequest(self.format, self.period_from, self.period_to, self.reporting_currency, rates)


class ExportError(BaseModel):
    code: str
    message: str


class ExportOut(BaseModel):
    id: int
    status: str
    format: str
    period_from: dt.datetime | None
    period_to: dt.datetime | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    tree_size: int | None = Field(description="The checkpoint the export is anchored to")
    entries: int | None
    postings: int | None
    archive_sha256: str | None
    download_url: str | None = Field(description="The zip archive, once done")
    error: ExportError | None

    @classmethod
    def of(cls, job: ExportJob) -> ExportOut:
        done = job.status == "done"
        return cls(id=job.id, status=job.status, format=job.format, period_from=job.period_from,
                   period_to=job.period_to, created_at=job.created_at, started_at=job.started_at,
                   finished_at=job.finished_at, tree_size=job.tree_size, entries=job.entries, postings=job.postings,
                   archive_sha256=job.archive_sha256,
                   download_url=f"/v1/exports/{job.id}/archive" if done else None,
                   error=ExportError(code=job.error_code, message=job.error_message or "") if job.error_code else None)


class ExportList(BaseModel):
    data: list[ExportOut]
    next_cursor: str | None
