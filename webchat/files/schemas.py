"""The API's shapes of files (pydantic), shared by :mod:`webchat.files.api` and the messages
of :mod:`webchat.api.schemas`."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field


class FileLink(BaseModel):
    """A file's name, type, size and where to GET it."""

    id: uuid.UUID
    name: str
    media_type: str = Field(description="Sniffed from the content: image/png, application/pdf…")
    size: int = Field(description="Bytes, as stored (an image re-encoded without metadata).")
    url: str = Field(description="GET it with the session or the same bearer token.")


class FileRef(FileLink):
    """A file as a message lists it."""

    thumbnail_url: str | None = Field(description="A WebP thumbnail of an image; else null.")


class FileOut(FileRef):
    """An uploaded file; pass its ``id`` in ``files`` of a message to send it."""

    sha256: str = Field(description="SHA-256 of the stored bytes, hex.")
