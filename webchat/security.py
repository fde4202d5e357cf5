"""HTTP security headers and cookie flags: the one place every response gets them.

Every response (pages, fragments, JSON, streams, static files, error pages) carries:

- ``Content-Security-Policy`` (CSP Level 3): scripts and styles only from this origin, no inline
  script, event handler or ``style`` attribute, no plugins, no ``<base>``, no framing. Images may
  also come from ``https:`` and ``data:`` (a model's Markdown may show a picture);
- ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` (for browsers without
  ``frame-ancestors``), ``Referrer-Policy: same-origin``, ``Permissions-Policy`` denying the
  powerful features webchat never uses, ``Cross-Origin-Opener-Policy: same-origin``;
- with ``HTTPS`` on: ``Strict-Transport-Security`` (RFC 6797) on requests that arrived over
  HTTPS, and ``Secure`` session and remember-me cookies.

Behind a reverse proxy, ``TRUSTED_PROXIES`` (the number of proxies in front) installs werkzeug's
``ProxyFix`` so that ``request.remote_addr``, the scheme and the host are the client's, which the
limits, the audit log and HSTS rely on. No ``X-Forwarded-*`` header is trusted without it.

Why not flask-talisman: its last release is from 2023; it trusts ``X-Forwarded-Proto`` from any
client whatever the proxy setting; it keeps per-view options in a dict it mutates on the view
function (shared between apps, which the tests build many of); and it still sends the obsolete
``Feature-Policy``. What webchat needs is the small hook below.
"""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

CSP: dict[str, str] = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data: https:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "media-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

# Structured-field syntax of the Permissions Policy spec: "feature=()" denies it to every origin.
PERMISSIONS = (
    "accelerometer",
    "autoplay",
    "camera",
    "display-capture",
    "geolocation",
    "gyroscope",
    "magnetometer",
    "microphone",
    "midi",
    "payment",
    "usb",
    "browsing-topics",
)

HSTS_MAX_AGE = 63_072_000  # two years, in seconds (the hstspreload.org minimum is one)


def content_security_policy() -> str:
    """The ``Content-Security-Policy`` header value, directives joined by ``; ``."""
    return "; ".join(f"{name} {value}" for name, value in CSP.items())


def _headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Permissions-Policy": ", ".join(f"{name}=()" for name in PERMISSIONS),
        "Cross-Origin-Opener-Policy": "same-origin",
    }


def init_app(app: Flask) -> None:
    """Install ProxyFix (when ``TRUSTED_PROXIES`` > 0), the cookie flags and the header hook."""
    proxies = int(app.config["TRUSTED_PROXIES"])
    if proxies > 0:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies
        )
    https = bool(app.config["HTTPS"])
    app.config["SESSION_COOKIE_SECURE"] = https
    app.config["REMEMBER_COOKIE_SECURE"] = https
    app.config["REMEMBER_COOKIE_HTTPONLY"] = True
    headers = _headers()
    hsts = f"max-age={HSTS_MAX_AGE}; includeSubDomains"

    @app.after_request
    def security_headers(response: Response) -> Response:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        if request.endpoint != "static" and "Cache-Control" not in response.headers:
            # Pages and answers hold private conversations: no shared or disk cache keeps them.
            response.headers["Cache-Control"] = "no-store"
        if https and request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", hsts)
        return response
