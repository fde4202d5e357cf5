"""Where the bytes of files live: blobs stored once by their SHA-256, in one of two backends.

- ``folder`` (the embedded default): ``<instance>/files/<aa>/<bb>/<sha256>``, written to a
  temporary name and renamed into place, so a reader never sees half a file.
- ``database``: the ``blobs.data`` column (``bytea`` on PostgreSQL, ``BLOB`` on SQLite), for
  several hosts that share one PostgreSQL and no disk.

``FILES_BACKEND`` chooses where new blobs go; each :class:`~webchat.models.Blob` row records its
own backend, so blobs written before the setting changed are still read from where they are.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from flask import current_app
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..extensions import db
from ..models import Blob, utcnow

BACKENDS = ("folder", "database")


class MissingBlob(LookupError):
    """A blob row whose bytes are not where its backend keeps them (a lost folder)."""


def sha256_of(data: bytes) -> str:
    """The SHA-256 of ``data`` (FIPS 180-4), as 64 lowercase hex digits."""
    return hashlib.sha256(data).hexdigest()


def folder() -> Path:
    """The folder of the ``folder`` backend: ``<instance>/files``."""
    return Path(current_app.instance_path) / "files"


def _path(sha256: str) -> Path:
    return folder() / sha256[:2] / sha256[2:4] / sha256


def _write_file(sha256: str, data: bytes) -> None:
    path = _path(sha256)
    if path.exists() and path.stat().st_size == len(data):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def put(data: bytes) -> Blob:
    """Store ``data`` once, by its SHA-256: the existing :class:`Blob` when the same bytes are
    stored already (whoever stored them), else a new one in the ``FILES_BACKEND`` backend.
    Two uploads of the same bytes at once both succeed (the row is inserted with ``ON CONFLICT
    DO NOTHING``). Flush only; a folder blob's file is written before the row."""
    sha256 = sha256_of(data)
    blob = db.session.get(Blob, sha256)
    if blob is not None:
        if blob.backend == "folder":
            _write_file(sha256, data)  # heals a blob whose file was lost
        return blob
    backend = current_app.config["FILES_BACKEND"]
    if backend not in BACKENDS:
        raise ValueError(f"FILES_BACKEND must be one of {BACKENDS}, not {backend!r}")
    if backend == "folder":
        _write_file(sha256, data)
    values = {
        "sha256": sha256,
        "size": len(data),
        "backend": backend,
        "data": data if backend == "database" else None,
        "created_at": utcnow(),
    }
    insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    db.session.execute(insert(Blob).values(**values).on_conflict_do_nothing())
    blob = db.session.get(Blob, sha256)
    assert blob is not None
    return blob


def read(sha256: str) -> bytes:
    """The bytes of the blob ``sha256``. Raises :class:`MissingBlob`."""
    blob = db.session.get(Blob, sha256)
    if blob is None:
        raise MissingBlob(sha256)
    if blob.backend == "database":
        data = db.session.scalar(select(Blob.data).where(Blob.sha256 == sha256))
        if data is None:
            raise MissingBlob(sha256)
        return bytes(data)
    try:
        return _path(sha256).read_bytes()
    except FileNotFoundError:
        raise MissingBlob(sha256) from None


def unlink(sha256: str) -> None:
    """Remove the folder backend's file of ``sha256``, if there (after its row's delete is
    committed)."""
    _path(sha256).unlink(missing_ok=True)
