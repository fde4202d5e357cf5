"""Response compression (Flask-Compress): pages, fragments, JSON and static files go out as
Brotli (RFC 7932) or gzip (RFC 1952), whichever the request's ``Accept-Encoding`` prefers.

Server-Sent Events are never compressed: ``text/event-stream`` is not in the compressed types,
so a stream's bytes leave as they are written (a compressor would hold them until its block
fills). ``tests/test_compression.py`` checks that the first event of a live stream arrives while
its reply is still being written, with ``Accept-Encoding: gzip, br``.
"""

from __future__ import annotations

from flask import Flask
from flask_compress import Compress

# What is compressed: text formats only (images and archives are compressed already).
MIMETYPES = [
    "text/html",
    "text/css",
    "text/plain",
    "text/markdown",
    "text/javascript",
    "application/javascript",
    "application/json",
    "application/x-ndjson",
    "image/svg+xml",
]
assert "text/event-stream" not in MIMETYPES

compress = Compress()


def init_app(app: Flask) -> None:
    """Compress responses of ``app``: Brotli (level 5) or gzip (level 6), bodies of 500 bytes
    and more, streamed downloads (exports) chunk by chunk; never ``text/event-stream``."""
    app.config.setdefault("COMPRESS_ALGORITHM", ["br", "gzip"])
    app.config.setdefault("COMPRESS_MIMETYPES", MIMETYPES)
    app.config.setdefault("COMPRESS_BR_LEVEL", 5)
    app.config.setdefault("COMPRESS_LEVEL", 6)
    app.config.setdefault("COMPRESS_MIN_SIZE", 500)
    compress.init_app(app)
