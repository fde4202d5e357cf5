"""Static files, minified and versioned: the stylesheet and scripts under ``static/`` are minified
once when the app starts (rcssmin, rjsmin: no build step, so ``make run`` on a fresh clone
serves them minified), compressed once (Brotli and gzip), and linked as
``/static/<file>?v=<hash>``, where ``<hash>`` is the first 12 hex digits of the SHA-256 of the
minified bytes. A request with the current hash is answered ``Cache-Control: public,
max-age=31536000, immutable`` (RFC 8246): a changed file gets a new URL, so a browser never keeps
a stale copy. Without the hash (or with an old one) the answer must be revalidated (``no-cache``
and an ``ETag``). Other static files (the favicon) are served by Flask as before.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import brotli
import rcssmin
import rjsmin
from flask import Flask, Response, request

IMMUTABLE = "public, max-age=31536000, immutable"  # one year, in seconds
MINIFIERS = {".css": rcssmin.cssmin, ".js": rjsmin.jsmin}
MIMETYPES = {".css": "text/css", ".js": "text/javascript"}


@dataclass(frozen=True)
class Asset:
    """One minified static file: its bytes as they are, Brotli- and gzip-compressed, its
    version (12 hex digits of SHA-256) and its media type."""

    body: bytes
    br: bytes
    gzip: bytes
    version: str
    mimetype: str


def build(folder: Path) -> dict[str, Asset]:
    """Every ``.css`` and ``.js`` file under ``folder``, minified, by its path relative to
    ``folder`` (``css/app.css``). Files named ``*.min.js`` are minified already and kept as
    they are."""
    assets: dict[str, Asset] = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix not in MINIFIERS or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        if not path.name.endswith(".min.js"):
            text = MINIFIERS[path.suffix](text)
        body = text.encode("utf-8")
        assets[path.relative_to(folder).as_posix()] = Asset(
            body=body,
            br=brotli.compress(body, quality=11),
            gzip=gzip.compress(body, compresslevel=9, mtime=0),
            version=hashlib.sha256(body).hexdigest()[:12],
            mimetype=MIMETYPES[path.suffix],
        )
    return assets


def init_app(app: Flask) -> None:
    """Build the assets of ``app.static_folder``, add ``?v=<hash>`` to their ``url_for``, and
    serve them from memory in place of Flask's static view."""
    assert app.static_folder
    assets = build(Path(app.static_folder))
    app.extensions["webchat.assets"] = assets

    @app.url_defaults
    def version_static_urls(endpoint: str, values: dict) -> None:
        asset = assets.get(values.get("filename", "")) if endpoint == "static" else None
        if asset is not None:
            values.setdefault("v", asset.version)

    def static(filename: str) -> Response:
        asset = assets.get(filename)
        if asset is None:
            return app.send_static_file(filename)
        return _answer(asset)

    app.view_functions["static"] = static


def _answer(asset: Asset) -> Response:
    """``asset`` for this request: compressed as its ``Accept-Encoding`` prefers (Brotli, then
    gzip), immutable when the URL names its version, 304 when its ``ETag`` matches."""
    current = request.args.get("v") == asset.version
    response = Response(mimetype=asset.mimetype)
    response.set_etag(asset.version)
    response.headers["Cache-Control"] = IMMUTABLE if current else "no-cache"
    response.vary.add("Accept-Encoding")
    if request.if_none_match.contains(asset.version):
        response.status_code = 304
        return response
    accepted = request.accept_encodings
    if accepted["br"]:
        response.set_data(asset.br)
        response.headers["Content-Encoding"] = "br"
    elif accepted["gzip"]:
        response.set_data(asset.gzip)
        response.headers["Content-Encoding"] = "gzip"
    else:
        response.set_data(asset.body)
    return response
