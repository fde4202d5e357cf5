"""Backups and maintenance: ``flask backup create [PATH]``, ``flask backup restore PATH`` and
``flask maintenance``.

A backup is a consistent copy taken while webchat serves:

- SQLite: the online backup API (``sqlite3.Connection.backup``, all pages in one step, so the
  copy is one snapshot; in WAL mode writers are not held up);
- PostgreSQL: ``pg_dump --format=custom`` run on a snapshot that webchat exports from a
  REPEATABLE READ transaction (``pg_export_snapshot()``), in which it also counts.

Beside the copy, ``PATH.manifest.json`` records what it holds, read from the same snapshot: the
rows of every table and a SHA-256 over every message's id and content (in id order). A restore
goes into an empty database only (the configured one), then counts and hashes what it restored
and compares with the manifest; a difference is an error (exit 1).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import Connection, create_engine, inspect, text

from .db import SQLITE_BUSY_TIMEOUT_MS
from .extensions import db

MANIFEST_VERSION = 1
CHECKSUM_BATCH = 1000


class BackupError(click.ClickException):
    """A backup or restore that cannot be done, or whose check failed."""


def _kind() -> str:
    return db.engine.dialect.name


def _tables(conn: Connection) -> list[str]:
    """Every table of the schema (webchat's, the search index's, alembic_version), sorted."""
    names = inspect(conn).get_table_names()
    return sorted(n for n in names if not n.startswith("sqlite_"))


def census(conn: Connection) -> dict[str, Any]:
    """``{"tables": {name: rows}, "messages_sha256": hex, "messages": n}`` of what ``conn``
    sees: rows of every table, and a SHA-256 over each message's id and content (UTF-8,
    separated by NUL), messages in id order."""
    tables = {}
    for name in _tables(conn):
        if name.endswith(("_data", "_idx", "_docsize", "_config", "_content")):
            continue  # FTS5 shadow tables: derived, and counted through their main table
        tables[name] = conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
    digest = hashlib.sha256()
    count = 0
    result = conn.execution_options(yield_per=CHECKSUM_BATCH).execute(
        text("SELECT id, content FROM messages ORDER BY id")
    )
    for message_id, content in result:
        digest.update(str(message_id).replace("-", "").encode())
        digest.update(b"\0")
        digest.update((content or "").encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
        count += 1
    return {"tables": tables, "messages": count, "messages_sha256": digest.hexdigest()}


def _sqlite_path(url: Any) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("The database is in memory; there is nothing to back up.")
    return Path(url.database)


def _pg_url(url: Any) -> str:
    """The libpq URL of a SQLAlchemy PostgreSQL URL (no driver, password included)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def default_path() -> Path:
    """``<instance>/backups/webchat-<UTC time>.sqlite3`` (or ``.dump`` for PostgreSQL)."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    suffix = "sqlite3" if _kind() == "sqlite" else "dump"
    return Path(current_app.instance_path) / "backups" / f"webchat-{stamp}.{suffix}"


def _manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".manifest.json")


def create(path: Path) -> dict[str, Any]:
    """Write a consistent backup of the configured database to ``path`` (not overwritten) and
    its manifest; returns the manifest. Raises :class:`BackupError`."""
    if path.exists():
        raise BackupError(f"{path} exists already; choose a new path.")
    path.parent.mkdir(parents=True, exist_ok=True)
    url = db.engine.url
    if _kind() == "sqlite":
        source = sqlite3.connect(_sqlite_path(url))
        target = sqlite3.connect(path)
        try:
            with target:
                source.backup(target)  # pages=-1: one step, one snapshot
        finally:
            source.close()
            target.close()
        copy = create_engine(f"sqlite:///{path}")
        try:
            with copy.connect() as conn:
                found = census(conn)
        finally:
            copy.dispose()
    elif _kind() == "postgresql":
        pg_dump = shutil.which("pg_dump")
        if pg_dump is None:
            raise BackupError("pg_dump is not installed (apt-get install postgresql-client).")
        with db.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
                found = census(conn)
                done = subprocess.run(
                    [pg_dump, "--format=custom", f"--snapshot={snapshot}", "--no-owner",
                     f"--file={path}", _pg_url(url)],
                    capture_output=True, text=True,
                )  # fmt: skip
        if done.returncode != 0:
            path.unlink(missing_ok=True)
            raise BackupError(f"pg_dump failed: {done.stderr.strip()}")
    else:
        raise BackupError(f"Backups of {_kind()} are not supported.")
    manifest = {
        "version": MANIFEST_VERSION,
        "database": _kind(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "file": path.name,
        "bytes": path.stat().st_size,
        **found,
    }
    _manifest_path(path).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _empty(conn: Connection) -> bool:
    return not _tables(conn)


def restore(path: Path) -> dict[str, Any]:
    """Restore the backup at ``path`` into the configured database, which must be empty (no
    tables), then check it against the manifest. Returns the restored census. Raises
    :class:`BackupError` (nothing restored, or a check that failed)."""
    manifest_file = _manifest_path(path)
    if not path.exists() or not manifest_file.exists():
        raise BackupError(f"{path} or its manifest {manifest_file.name} is missing.")
    manifest = json.loads(manifest_file.read_text())
    if manifest.get("database") != _kind():
        kind = manifest.get("database")
        raise BackupError(f"This is a {kind} backup; the database is {_kind()}.")
    with db.engine.connect() as conn:
        if not _empty(conn):
            raise BackupError("The database is not empty; restore into a new, empty one.")
    url = db.engine.url
    db.engine.dispose()
    if _kind() == "sqlite":
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        target = sqlite3.connect(_sqlite_path(url))
        try:
            with target:
                source.backup(target)
        finally:
            source.close()
            target.close()
    else:
        pg_restore = shutil.which("pg_restore")
        if pg_restore is None:
            raise BackupError("pg_restore is not installed (apt-get install postgresql-client).")
        done = subprocess.run(
            [pg_restore, "--no-owner", "--no-privileges", "--exit-on-error",
             f"--dbname={_pg_url(url)}", str(path)],
            capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise BackupError(f"pg_restore failed: {done.stderr.strip()}")
    with db.engine.connect() as conn:
        found = census(conn)
    expected = {k: manifest[k] for k in ("tables", "messages", "messages_sha256")}
    if found != expected:
        wrong = [
            f"{name}: {found['tables'].get(name)} rows, expected {rows}"
            for name, rows in expected["tables"].items()
            if found["tables"].get(name) != rows
        ]
        if found["messages_sha256"] != expected["messages_sha256"]:
            wrong.append("the messages' checksum differs")
        raise BackupError("The restored database differs from the backup: " + "; ".join(wrong))
    return found


def sizes(conn: Connection) -> list[tuple[str, int]]:
    """``(table, bytes)`` of every table with its indexes, largest first (SQLite: dbstat,
    when compiled in; PostgreSQL: ``pg_total_relation_size``)."""
    if _kind() == "postgresql":
        rows = conn.execute(
            text(
                "SELECT relname, pg_total_relation_size(c.oid) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 2 DESC"
            )
        ).all()
        return [(str(name), int(size)) for name, size in rows]
    try:
        rows = conn.execute(
            text(
                "SELECT coalesce(m.tbl_name, s.name), sum(s.pgsize) FROM dbstat s "
                "LEFT JOIN sqlite_master m ON m.name = s.name GROUP BY 1 ORDER BY 2 DESC"
            )
        ).all()
    except Exception:  # noqa: BLE001 - SQLite built without dbstat: the whole file only
        conn.rollback()
        pages = conn.execute(text("PRAGMA page_count")).scalar_one()
        size = conn.execute(text("PRAGMA page_size")).scalar_one()
        return [("(all tables)", int(pages) * int(size))]
    return [(str(name), int(size)) for name, size in rows]


def vacuum() -> None:
    """VACUUM and ANALYZE the database (outside a transaction, as both need)."""
    if _kind() == "postgresql":
        with db.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("VACUUM (ANALYZE)"))
        return
    # A connection of its own: webchat's engine opens every transaction itself (webchat.db).
    raw = sqlite3.connect(_sqlite_path(db.engine.url), isolation_level=None)
    try:
        raw.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        raw.execute("VACUUM")
        raw.execute("ANALYZE")
    finally:
        raw.close()


backup_cli = AppGroup("backup", help="Back up and restore the database.")


@backup_cli.command("create")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
def create_command(path: Path | None) -> None:
    """Write a consistent copy of the database (while webchat serves) and its manifest."""
    path = path or default_path()
    manifest = create(path)
    click.echo(
        f"backed up {manifest['messages']} messages, "
        f"{sum(manifest['tables'].values())} rows, to {path} ({manifest['bytes']} bytes)"
    )


@backup_cli.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def restore_command(path: Path) -> None:
    """Restore a backup into the (empty) database and check rows and message checksums."""
    found = restore(path)
    click.echo(
        f"restored and checked: {found['messages']} messages "
        f"(sha256 {found['messages_sha256'][:16]}…), {len(found['tables'])} tables"
    )


@click.command("maintenance")
@with_appcontext
@click.option("--no-vacuum", is_flag=True, help="Only print the sizes.")
def maintenance_command(no_vacuum: bool) -> None:
    """VACUUM and ANALYZE the database, then print the size per table and per user."""
    from .admin.services import human_bytes, storage

    if not no_vacuum:
        vacuum()
        click.echo("vacuumed and analyzed")
    with db.engine.connect() as conn:
        click.echo("table\tbytes")
        for name, size in sizes(conn):
            click.echo(f"{name}\t{human_bytes(size)}")
    click.echo("user\tconversations\tmessages\tbytes")
    for row in storage():
        click.echo(
            f"{row.user.email}\t{row.conversations}\t{row.messages}\t{human_bytes(row.bytes)}"
        )
    db.session.rollback()
