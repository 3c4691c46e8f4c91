"""Running the Alembic migrations from code (the CLI and the test suite use this)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    ini = PROJECT_ROOT / "alembic.ini"
    if not ini.exists():
        raise RuntimeError(f"alembic.ini not found at {ini}; install the project from its source tree "
                           "(pip install -e .)")
    config = Config(str(ini))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    if url is not None:
        config.attributes["url"] = url
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(url: str | None = None, *, connection: Connection | None = None, revision: str = "heads") -> None:
    """Bring the database at ``url`` (default: settings) to the newest schema."""
    command.upgrade(alembic_config(url, connection), revision)


def current_heads(url: str | None = None) -> list[str]:
    from alembic.script import ScriptDirectory

    return list(ScriptDirectory.from_config(alembic_config(url)).get_heads())
