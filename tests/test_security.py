"""Security headers on every page, fragment, JSON answer and static file; cookie flags; HSTS
behind an HTTPS proxy (webchat.security)."""

from __future__ import annotations

import pytest

from webchat.security import content_security_policy

from .conftest import csrf_token, post, sign_in, sign_up

EXPECTED = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def assert_headers(response, path: str) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (path, name)
    csp = response.headers.get("Content-Security-Policy", "")
    assert csp == content_security_policy(), path
    assert "camera=()" in response.headers.get("Permissions-Policy", ""), path
    if not path.startswith("/static/"):
        assert response.headers.get("Cache-Control") in ("no-store", "no-cache"), path


def test_policy_is_strict():
    csp = dict(part.split(" ", 1) for part in content_security_policy().split("; "))
    assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    assert csp["object-src"] == "'none'" and csp["base-uri"] == "'none'"
    assert csp["frame-ancestors"] == "'none'"
    assert "unsafe" not in content_security_policy()


def test_every_page_answers_with_the_headers(app, client):
    # signed out: the sign-in pages, a redirect, a 404
    for path in ("/login", "/signup", "/", "/no-such-page", "/static/css/app.css"):
        assert_headers(client.get(path), path)
    missing = client.get("/no-such-page", headers={"X-Request-ID": "abc-123"})
    assert "Request id: <code>abc-123</code>" in missing.get_data(as_text=True)
    sign_up(client)
    created = post(client, "/c", {"content": "hello"})  # a conversation (and its stream) to show
    assert created.status_code in (302, 303), created.status_code
    paths = [created.headers["Location"]]
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.arguments:
            continue
        paths.append(str(rule.rule))
    assert "/settings/" in paths and "/api/v1/conversations" in paths
    for path in paths:
        response = client.get(path, headers={"Accept": "text/html"})
        assert response.status_code < 500, path
        assert_headers(response, path)
        response.close()
    # an htmx fragment and a JSON API answer carry them too
    assert_headers(client.get("/settings/", headers={"HX-Request": "true"}), "fragment")
    assert_headers(client.get("/api/v1/conversations"), "api")


def test_no_inline_script_or_handler_in_templates():
    """The CSP refuses inline script: no template may need it (no <script> body, no on*=)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "templates"
    for path in root.rglob("*.html"):
        html = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r"\son[a-z]+\s*=", html), path
        assert not re.search(r"\sstyle\s*=", html), path
        assert "hx-on" not in html, path


def test_cookies_without_https_are_plain_but_http_only(client):
    sign_up(client)
    response = client.get("/signup")
    assert "Strict-Transport-Security" not in response.headers
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.http_only and not cookie.secure


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_https_behind_a_proxy_gives_hsts_and_secure_cookies(make_app):
    app = make_app(HTTPS=True, TRUSTED_PROXIES=1)
    client = app.test_client()
    plain = client.get("/signup")
    assert "Strict-Transport-Security" not in plain.headers  # not over HTTPS
    secure = app.test_client().get("/signup", headers={"X-Forwarded-Proto": "https"})
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "Secure" in secure.headers["Set-Cookie"] and "HttpOnly" in secure.headers["Set-Cookie"]
    # without a trusted proxy the header is not believed
    untrusting = make_app(HTTPS=True).test_client()
    spoofed = untrusting.get("/signup", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in spoofed.headers


def test_bad_input_is_refused_and_changes_nothing(app, client):
    """Oversized bodies: 413 before they are read whole; malformed forms and JSON: 400 naming
    the field; nothing changes."""
    sign_up(client)
    big = b"current=x&password=" + b"y" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = post(
        client, "/settings/password", headers={"Content-Type": "application/x-www-form-urlencoded"},
        data=big,
    )  # fmt: skip
    assert response.status_code == 413
    missing = post(client, "/settings/password", {"current": "correct horse"})
    assert missing.status_code == 400 and "This field is required" in missing.get_data(as_text=True)
    mismatch = post(
        client,
        "/settings/password",
        {"current": "correct horse", "password": "new passphrase", "confirm": "other one"},
    )
    assert mismatch.status_code == 400 and "The passwords differ" in mismatch.get_data(as_text=True)
    malformed = post(client, "/api/v1/conversations", headers={"Content-Type": "application/json"},
                     data="{not json")  # fmt: skip
    assert malformed.status_code == 400 and malformed.get_json()["error"]["code"] == "invalid_input"
    typed = client.post(
        "/api/v1/conversations", json={"title": 5}, headers={"X-CSRFToken": csrf_token(client, "/")}
    )
    assert typed.status_code == 400
    assert "title" in typed.get_json()["error"]["details"]["fields"]
    post(client, "/logout")
    signed_in = sign_in(client)
    assert signed_in.status_code == 302  # the password never changed
    assert client.get("/api/v1/conversations").get_json()["items"] == []
