"""Database engine set-up and the transaction helpers every writer uses.

SQLite (the embedded default) runs in WAL mode with a busy timeout, and write transactions start
with ``BEGIN IMMEDIATE`` so that concurrent writers queue for the write lock instead of failing
with ``database is locked`` when a read transaction tries to upgrade (see "Transaction" and
"Write-Ahead Logging" in the SQLite documentation). PostgreSQL needs none of this.

Which transactions are write transactions:

- inside a request whose method is not GET, HEAD or OPTIONS, every transaction (views read, then
  write: the user, the conversation, then the new message — a deferred transaction that read
  first fails with ``database is locked`` when another writer committed in between, whatever the
  busy timeout);
- elsewhere (run executors, the reaper, the CLI, GET requests), the transaction that
  :func:`begin_write` opens. A GET view that writes must call it before its first read.

``BEGIN IMMEDIATE`` waits for the write lock in Python, with ``time.sleep`` between attempts,
not in SQLite's busy handler: under gunicorn's gevent worker the busy handler's sleep would
block the whole event loop, and with it the greenlet that holds the lock (a deadlock until the
timeout). ``time.sleep`` yields to the other greenlets there, and to other threads elsewhere.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from flask import has_request_context, request
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .extensions import db

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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
        mode = conn.get_execution_options().get("sqlite_begin") or _default_begin()
        if mode == "IMMEDIATE":
            begin_immediate(conn.connection.dbapi_connection)
        else:
            conn.exec_driver_sql(f"BEGIN {mode}")


def begin_immediate(
    dbapi_connection: sqlite3.Connection, timeout_ms: float = SQLITE_BUSY_TIMEOUT_MS
) -> None:
    """``BEGIN IMMEDIATE`` on a raw sqlite3 connection, retrying while another connection holds
    the write lock: sleeps 1 ms, doubling up to 20 ms, for at most ``timeout_ms``.

    Raises ``sqlite3.OperationalError`` (``database is locked``) when the lock is still held
    after ``timeout_ms``, or at once for any other error.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    delay = 0.001
    dbapi_connection.execute("PRAGMA busy_timeout=0")  # fail fast; the waiting happens here
    try:
        while True:
            try:
                dbapi_connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                busy = exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() >= deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
    finally:
        dbapi_connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


def _default_begin() -> str:
    """``IMMEDIATE`` inside a request that may write (POST, PUT, PATCH, DELETE), else
    ``DEFERRED``."""
    if has_request_context() and request.method not in READ_METHODS:
        return "IMMEDIATE"
    return "DEFERRED"


def begin_write() -> None:
    """Make the session's current transaction a write transaction, taken at once.

    On SQLite any read transaction the session holds is ended first (its objects are expired and
    reload on next access) and a ``BEGIN IMMEDIATE`` transaction is opened, waiting up to
    ``SQLITE_BUSY_TIMEOUT_MS`` for the write lock (see :func:`begin_immediate`). Call it before
    a unit of work that writes; commit afterwards.
    On PostgreSQL it does nothing.
    """
    if db.engine.dialect.name != "sqlite":
        return
    if db.session().in_transaction():
        db.session.commit()
    db.session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
