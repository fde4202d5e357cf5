"""Static files: minified when the app starts, linked with a version, cached for a year at that
URL, and revalidated without it."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import brotli

from webchat import ROOT
from webchat.assets import IMMUTABLE, build

from .conftest import sign_up


def test_the_stylesheet_and_scripts_are_minified():
    assets = build(ROOT / "static")
    assert {"css/app.css", "js/app.js", "vendor/htmx-ext-sse-2.2.4/sse.js"} <= set(assets)
    for name in ("css/app.css", "js/app.js", "vendor/htmx-ext-sse-2.2.4/sse.js"):
        source = (ROOT / "static" / name).read_bytes()
        minified = assets[name].body
        assert len(minified) < len(source) * 0.85, name
        assert b"\n  " not in minified and b"/* " not in minified
        assert brotli.decompress(assets[name].br) == gzip.decompress(assets[name].gzip) == minified
    htmx = "vendor/htmx-2.0.11/htmx.min.js"  # minified already: kept as it is
    assert assets[htmx].body == (ROOT / "static" / htmx).read_bytes()
    # the minified stylesheet keeps every rule: same selectors, in the same order
    source_css = (ROOT / "static/css/app.css").read_text()
    selectors = re.findall(r"([.#][\w-]+)\s*[,{]", source_css)
    minified_css = assets["css/app.css"].body.decode()
    assert re.findall(r"([.#][\w-]+)\s*[,{]", minified_css) == selectors


def test_pages_link_versions_that_are_cached_for_a_year(client):
    sign_up(client)
    page = client.get("/").get_data(as_text=True)
    links = re.findall(r'(?:href|src)="(/static/[^"]+\.(?:css|js))\?v=([0-9a-f]{12})"', page)
    assert {Path(p).name for p, _ in links} == {
        "app.css", "organise.css", "files.css", "htmx.min.js", "sse.js", "app.js", "shortcuts.js",
        "files.js",
    }  # fmt: skip
    assert not re.findall(r'(?:href|src)="/static/[^"?]+\.(?:css|js)"', page)  # none unversioned
    for path, version in links:
        fresh = client.get(f"{path}?v={version}", headers={"Accept-Encoding": "gzip"})
        assert fresh.status_code == 200 and fresh.headers["Cache-Control"] == IMMUTABLE
        assert fresh.headers["Content-Encoding"] == "gzip" and fresh.headers["ETag"]
        assert "Accept-Encoding" in fresh.headers["Vary"]
        body = gzip.decompress(fresh.data)
        assert len(body) == len(client.get(f"{path}?v={version}").data)
        bare = client.get(path)  # no version (or an old one): revalidate
        assert bare.headers["Cache-Control"] == "no-cache" and bare.data == body
        again = client.get(path, headers={"If-None-Match": bare.headers["ETag"]})
        assert again.status_code == 304 and again.data == b""
    icon = client.get("/static/favicon.svg")  # other files: Flask's static view
    assert icon.status_code == 200 and b"<svg" in icon.data
    assert client.get("/static/css/nothing.css").status_code == 404
