"""The Store on SQL databases (SQLAlchemy Core; SQLite and PostgreSQL)."""

from shipyard.store.sql.store import SqlStore

__all__ = ["SqlStore"]
