"""Database plumbing shared by every domain: engine, sessions, base class, column types."""

from settlement.db.base import Base
from settlement.db.engine import make_engine
from settlement.db.session import SessionFactory, make_session_factory, unit_of_work

__all__ = ["Base", "SessionFactory", "make_engine", "make_session_factory", "unit_of_work"]
