"""Database engine set-up and the transaction helpers every writer uses.

SQLite (the embedded default) runs in WAL mode with a busy timeout, and write transactions start
with ``BEGIN IMMEDIATE`` so that concurrent writers queue on the busy timeout instead of failing
with ``database is locked`` when a read transaction tries to upgrade (see "Transaction" and
"Write-Ahead Logging" in the SQLite documentation). PostgreSQL needs none of this.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from .extensions import db

SQLITE_BUSY_TIMEOUT_MS = 30_000


def configure_engine(engine: Engine) -> None:
    """Install the SQLite pragmas and begin-handling on ``engine``; a no-op on other databases."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own is deferred-only).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def begin_write() -> None:
    """Make the session's current transaction a write transaction, taken at once.

    On SQLite any read transaction the session holds is ended first (its objects are expired and
    reload on next access) and a ``BEGIN IMMEDIATE`` transaction is opened, waiting up to the busy
    timeout for the write lock. Call it before a unit of work that writes; commit afterwards.
    On PostgreSQL it does nothing.
    """
    if db.engine.dialect.name != "sqlite":
        return
    if db.session().in_transaction():
        db.session.commit()
    db.session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
