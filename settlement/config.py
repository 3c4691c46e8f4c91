"""Configuration: one :class:`Settings`, read from ``SETTLEMENT_*`` environment
variables (and an optional ``.env`` file). Nothing is configured at import time:
callers build ``Settings()`` (or use :func:`get_settings`) when they start.
"""

from __future__ import annotations

import functools
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from sqlalchemy import Engine

DEFAULT_SQLITE_FILE = "settlement.db"


class Settings(BaseSettings):
    """Every setting of the service, with its environment variable name.

    The defaults are the embedded mode: a SQLite file in the working directory and
    Celery tasks run inline, so the service works on a bare machine.
    """

    model_config = SettingsConfigDict(env_prefix="SETTLEMENT_", env_file=".env", extra="ignore")

    #: ``sqlite:///path.db`` (embedded default) or ``postgresql+psycopg://user@host/db``.
    database_url: str = Field(default_factory=lambda: f"sqlite:///{Path.cwd() / DEFAULT_SQLITE_FILE}")
    #: Connection pool size per process (PostgreSQL).
    database_pool_size: int = 10
    #: Test each pooled connection before use (one more round trip per transaction).
    #: Off: a connection broken by a database restart fails one transaction, then the
    #: pool discards it.
    database_pool_pre_ping: bool = False
    #: Celery broker; empty means tasks run inline in the calling process.
    broker_url: str = ""
    #: Celery result backend; empty means none.
    result_backend: str = ""
    #: Where the service keeps files it receives and produces (uploads, exports, inbox).
    data_dir: Path = Field(default_factory=lambda: Path.cwd() / "settlement-data")
    #: Ed25519 private key (PEM) that signs journal checkpoints and export manifests:
    #: a path to a file, or the PEM text itself in ``journal_signing_key``.
    journal_signing_key_file: Path | None = None
    journal_signing_key: SecretStr | None = None
    #: The journal's name: first line of every checkpoint and the signing key's name.
    journal_origin: str = "settlement.journal"
    #: Most entries one sealing transaction takes (the task loops until none are left).
    journal_seal_batch: int = 25_000
    #: How long an export waits for running transactions that hold committed entries
    #: back from sealing, seconds.
    journal_seal_wait_seconds: int = 60
    #: Secret for HMAC-SHA256 signatures of outgoing webhooks (per endpoint secrets
    #: override it).
    webhook_secret: SecretStr | None = None
    #: Outgoing webhooks: per-attempt HTTP timeout, seconds.
    webhook_timeout_seconds: int = Field(default=10, ge=1, le=300)
    #: Attempts per delivery (the first one included) before it is marked failed.
    webhook_max_attempts: int = Field(default=8, ge=1, le=100)
    #: Seconds to wait after failed attempt 1, 2, ... (the last value repeats); JSON
    #: list in the environment, e.g. ``SETTLEMENT_WEBHOOK_RETRY_SCHEDULE='[1,2,4]'``.
    webhook_retry_schedule: list[int] = Field(default_factory=lambda: [60, 300, 1800, 7200, 21600, 43200, 86400],
                                              min_length=1)
    #: Random spread of each wait, in percent either way.
    webhook_retry_jitter_percent: int = Field(default=10, ge=0, le=50)
    #: Default lifetime of a ledger hold (authorization), seconds.
    hold_timeout_seconds: int = 7 * 24 * 3600
    #: How long an FX quote stays valid, seconds.
    fx_quote_ttl_seconds: int = 300
    #: Write-offs above this many minor units need a second finance user's approval.
    writeoff_approval_threshold: int = 10_000
    #: API server.
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_workers: int = 1
    #: Payment rails: path of a JSON file ``{"mir": {"port": "...", ...}, ...}`` holding
    #: each rail's client configuration (the keys its plugin documents).
    rails_config_file: Path | None = None
    #: Base URL the rails reach this service at (``https://pay.example``): rails
    #: configured without ``notify_url`` get ``<base>/v1/notifications/<rail>``.
    public_base_url: str = ""
    #: Marketplace commission for merchants created without one (a fraction: 0.05 = 5 %).
    default_commission_rate: Decimal = Decimal("0.05")
    #: FX: where rate snapshots come from (``file:/path/rates.json`` or ``rail:alipay``)
    #: and the spread taken on every conversion (a fraction of the mid rate).
    fx_rates_source: str = ""
    fx_spread: Decimal = Decimal("0.005")
    #: A money-moving request holds its Idempotency-Key this long; a retry after that
    #: takes over a key whose request died.
    idempotency_lease_seconds: int = 120
    #: Stored idempotent responses are kept this long.
    idempotency_retention_hours: int = 48
    #: The janitor leaves a rail operation to the request that started it for this long
    #: before asking the rail itself (longer than any rail timeout).
    janitor_grace_seconds: int = 120
    #: On PostgreSQL, the outcomes of at most this many concurrent requests are
    #: recorded in one transaction, so that the ledger accounts every payment shares
    #: are locked once for all of them (1: each request alone).
    outcome_group_size: int = Field(default=16, ge=1, le=1000)
    #: Reconciliation. Inbox folders the daily pickup reads, by rail name (and
    #: ``statement`` for bank statements), JSON in the environment; a rail not named
    #: here uses ``<data_dir>/inbox/<rail>``.
    recon_inbox: dict[str, Path] = Field(default_factory=dict)
    #: A file line and an expectation whose gross amounts differ by at most this many
    #: minor units, or by at most this fraction of the expected amount, still match
    #: (the difference is booked to ``recon:<rail>:variance:<CUR>``); 0 and 0: exact.
    recon_amount_tolerance: int = Field(default=0, ge=0)
    recon_relative_tolerance: Decimal = Field(default=Decimal(0), ge=0, lt=1)
    #: A line matches an expectation only when their transaction dates are at most
    #: this many days apart.
    recon_date_window_days: int = Field(default=3, ge=0, le=366)
    #: Per rail, business days after the expected settlement date before an absent
    #: record counts as missing (overrides the rail's own calendar), JSON.
    recon_sla_days: dict[str, int] = Field(default_factory=dict)
    #: Days after a settlement batch's date before a statement without it counts it missing.
    recon_statement_sla_days: int = Field(default=3, ge=0)
    #: Matches booked per ledger entry, and file lines loaded per transaction.
    recon_booking_chunk: int = Field(default=5_000, ge=1)
    recon_load_chunk: int = Field(default=50_000, ge=1)
    #: A running reconciliation without a heartbeat for this long is restarted.
    recon_stale_run_seconds: int = Field(default=300, ge=10)
    #: Our bank account numbers, for statement formats that say a payment's side only
    #: by account (1CClientBankExchange), JSON list.
    recon_bank_accounts: list[str] = Field(default_factory=list)
    #: Finance console: a session lasts at most this long after sign-in, and ends
    #: sooner after this long without a request.
    console_session_seconds: int = Field(default=8 * 3600, ge=60, le=7 * 24 * 3600)
    console_idle_seconds: int = Field(default=30 * 60, ge=60, le=24 * 3600)
    #: Mark console cookies Secure even on plain HTTP requests (set it behind a proxy
    #: that terminates TLS; requests made over https get Secure cookies anyway).
    console_secure_cookies: bool = False

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("SETTLEMENT_DATABASE_URL must be a sqlite:// or postgresql+psycopg:// URL")
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            # psycopg 3 is the only PostgreSQL driver installed.
            value = "postgresql+psycopg://" + value.split("://", 1)[1]
        return value

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _non_negative_waits(cls, value: list[int]) -> list[int]:
        if any(wait < 0 for wait in value):
            raise ValueError("webhook retry waits are seconds >= 0")
        return value

    def engine(self) -> Engine:
        """A new engine for :attr:`database_url` with these pool settings."""
        from settlement.db.engine import make_engine

        return make_engine(self.database_url, pool_size=self.database_pool_size,
                           pre_ping=self.database_pool_pre_ping)

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    @property
    def tasks_inline(self) -> bool:
        return not self.broker_url


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read once on first use."""
    return Settings()
