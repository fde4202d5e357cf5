"""Who is calling the API: a bearer token, or the browser's session for same-origin calls.

Every route of the ``api`` blueprint is authenticated by :func:`authenticate` (installed as the
blueprint's ``before_request``) unless marked :func:`public`; a view reads the caller with
:func:`current_api_user`.

- ``Authorization: Bearer <token>`` (RFC 6750 §2.1): a live token of ``webchat.api.tokens``.
  A bad or revoked token is a 401, whatever the session says. No CSRF check: a browser never
  sends that header by itself.
- Otherwise the session cookie of a signed-in user, as the pages use it. Unsafe methods (POST,
  PATCH, DELETE) then need the session's CSRF token in ``X-CSRFToken``, as every htmx request
  of the pages sends it (the blueprint is exempt from the app-wide check only so that bearer
  calls pass).
- Neither: 401 with ``WWW-Authenticate: Bearer``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import current_app, g, request
from flask_login import current_user

from ..extensions import csrf, db
from ..models import User
from . import tokens
from .errors import fail

F = TypeVar("F", bound=Callable)
_PUBLIC = "_webchat_api_public"


def public(view: F) -> F:
    """Mark an API view as open to anyone (the OpenAPI document)."""
    setattr(view, _PUBLIC, True)
    return view


def authenticate() -> None:
    """Find the caller of this API request and keep it for :func:`current_api_user`.

    Raises the API's 401 (no or bad credentials) or 400 ``csrf_failed`` (a session call of an
    unsafe method without a valid CSRF token).
    """
    view = current_app.view_functions.get(request.endpoint or "")
    if view is not None and getattr(view, _PUBLIC, False):
        return
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            fail(401, "Send the token as: Authorization: Bearer <token>.", code="invalid_token")
        found = tokens.user_for_token(token.strip())
        if found is None:
            fail(401, "This API token is unknown or revoked.", code="invalid_token")
        user, touched = found
        if touched:
            db.session.commit()  # last_used_at: bookkeeping, at most once a minute per token
        g.api_user = user
        return
    if current_user.is_authenticated:
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            csrf.protect()
        g.api_user = current_user._get_current_object()
        return
    fail(401, "Sign in, or send an API token: Authorization: Bearer <token>.")


def current_api_user() -> User:
    """The user calling this API request (after :func:`authenticate`)."""
    return g.api_user
