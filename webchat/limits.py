"""Abuse limits (Flask-Limiter): every limit of webchat, declared here by endpoint.

- ``LOGIN_LIMIT``: failed sign-ins (answers 400) per account email, on sign-in;
- ``LOGIN_IP_LIMIT``: failed sign-ins per client IP, on sign-in;
- ``SIGNUP_LIMIT``: sign-up attempts per client IP;
- ``SEND_LIMIT``: messages sent (each starts a reply) per user: new chat, send, retry, the
  API's create and send, and the gateway's ``/v1/chat/completions`` and ``/v1/messages``;
- ``API_LIMIT``: requests per API token (or signed-in user, or IP) on every ``/api/v1`` and
  gateway ``/v1`` route;
- ``IMPORT_LIMIT``: imports per user: the import page and ``POST /api/v1/import``.

A failed sign-in only *counts* after it failed, but a request past the limit is refused before
the view runs: the right password does not get through a locked window. Values use the
``limits`` notation ("10 per 15 minutes"; several separated by ``;``); an empty value switches a
limit off, ``RATELIMIT_ENABLED = False`` all of them.

The counters live in Redis when ``WEBCHAT_REDIS_URL`` is set (shared by every worker and host),
otherwise in the process's memory (``RATELIMIT_STORAGE_URI`` overrides both); while Redis is
unreachable each process counts in its own memory, so webchat keeps answering. A request past a
limit is a 429 with ``Retry-After`` (seconds, RFC 9110 §10.2.3): a readable page, or the API's
JSON error.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from flask import Flask, Response, current_app, render_template, request
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address
from flask_login import current_user
from markupsafe import escape

from . import htmx
from .auth.services import normalize_email

EXTENSION = "webchat.limiter"


def _ip() -> str:
    return "ip:" + get_remote_address()


def _account() -> str:
    """The account a sign-in is for: the email typed (normalized), whether or not it exists."""
    return "account:" + normalize_email(request.form.get("email", ""))[:320]


def _user() -> str:
    if current_user.is_authenticated:
        return f"user:{current_user.id}"
    return _ip()


def _api_caller() -> str:
    """The bearer token (or Anthropic's ``x-api-key``, by its hash) of an API call, else the
    signed-in user, else the IP."""
    from .api.tokens import hash_token, presented

    token = presented(request.headers)
    if token:
        return "token:" + hash_token(token)[:32]
    return _user()


def _failed(response: Response) -> bool:
    return response.status_code == 400


def _setting(name: str) -> Callable[[], str]:
    return lambda: current_app.config[name] or ""


# endpoint → (setting, key function, methods, count only failures, message)
LIMITS: list[tuple[str, str, Callable[[], str], list[str] | None, bool, str]] = [
    ("auth.login", "LOGIN_LIMIT", _account, ["POST"], True,
     "Too many failed sign-ins for this account. Sign-in to it is paused for a while."),
    ("auth.login", "LOGIN_IP_LIMIT", _ip, ["POST"], True,
     "Too many failed sign-ins from your network. Sign-in is paused for a while."),
    ("auth.signup", "SIGNUP_LIMIT", _ip, ["POST"], False,
     "Too many sign-ups from your network."),
    ("conversations.create", "SEND_LIMIT", _user, None, False, "You are sending too fast."),
    ("conversations.send", "SEND_LIMIT", _user, None, False, "You are sending too fast."),
    ("conversations.retry", "SEND_LIMIT", _user, None, False, "You are sending too fast."),
    ("conversations.save_edit", "SEND_LIMIT", _user, None, False, "You are sending too fast."),
    ("conversations.regenerate", "SEND_LIMIT", _user, None, False, "You are sending too fast."),
    ("api.create_conversation", "SEND_LIMIT", _api_caller, None, False, "Sending too fast."),
    ("api.send_message", "SEND_LIMIT", _api_caller, None, False, "Sending too fast."),
    ("api.edit_message", "SEND_LIMIT", _api_caller, None, False, "Sending too fast."),
    ("api.regenerate", "SEND_LIMIT", _api_caller, None, False, "Sending too fast."),
    ("gateway.chat_completions", "SEND_LIMIT", _api_caller, None, False, "Sending too fast."),
    ("gateway.messages", "SEND_LIMIT", _api_caller, None, False, "Sending too fast."),
    ("conversations.approval", "SEND_LIMIT", _user, None, False, "You are sending too fast."),
    ("api.approve", "SEND_LIMIT", _api_caller, None, False, "Sending too fast."),
    ("porting.upload", "IMPORT_LIMIT", _user, ["POST"], False, "Too many imports."),
    ("shares.create", "SHARE_LIMIT", _user, None, False, "Too many share links at once."),
    ("api.create_share", "SHARE_LIMIT", _api_caller, None, False, "Too many share links."),
    ("api.import_conversations", "IMPORT_LIMIT", _api_caller, None, False, "Too many imports."),
]  # fmt: skip


SENDS = frozenset({"conversations.create", "conversations.send", "conversations.retry"})


def limiter_of(app: Flask) -> Limiter:
    """The app's limiter (one per app: its storage and counters are the app's own)."""
    return app.extensions[EXTENSION]


def retry_after(limiter: Limiter) -> int:
    """Seconds until every limit this request broke lets a request through again (at least 1)."""
    broken = [lim for lim in limiter.current_limits if lim.breached] or [
        lim for lim in [limiter.current_limit] if lim is not None
    ]
    if not broken:
        return 1
    return max(1, math.ceil(max(lim.reset_at for lim in broken) - time.time()))


def _wait_text(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{math.ceil(seconds / 60)} minutes"


def init_app(app: Flask) -> None:
    """Create the app's limiter, storage per the settings, and apply :data:`LIMITS` to the
    endpoints registered so far (call it after the blueprints)."""
    config = app.config
    if not config.get("RATELIMIT_STORAGE_URI"):
        config["RATELIMIT_STORAGE_URI"] = config.get("REDIS_URL") or "memory://"
    config.setdefault("RATELIMIT_STRATEGY", "moving-window")
    # Redis down: count in this process's memory meanwhile rather than fail every request.
    config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    config.setdefault("RATELIMIT_KEY_PREFIX", "webchat")
    limiter = Limiter(key_func=_ip, headers_enabled=False)
    limiter.init_app(app)
    app.extensions[EXTENSION] = limiter

    for endpoint, setting, key, methods, failures_only, message in LIMITS:
        view = app.view_functions.get(endpoint)
        if view is None:
            continue
        app.view_functions[endpoint] = limiter.limit(  # type: ignore[assignment]
            _setting(setting),
            key_func=key,
            methods=methods,
            deduct_when=_failed if failures_only else None,
            error_message=message,
            scope=f"{endpoint}:{setting}",
        )(view)
    from .api import bp as api_bp
    from .gateway import bp as gateway_bp

    limiter.limit(_setting("API_LIMIT"), key_func=_api_caller, scope="api")(api_bp)
    limiter.limit(_setting("API_LIMIT"), key_func=_api_caller, scope="api")(gateway_bp)

    @app.errorhandler(RateLimitExceeded)
    def too_many(exc: RateLimitExceeded):
        seconds = retry_after(limiter)
        if request.blueprint == "gateway":  # in the error shape of the API it speaks
            from .gateway.views import error_writer

            response = error_writer()(429, f"{exc.description} Retry after {seconds} s.", None)
        elif request.blueprint == "api" or request.path.startswith("/api/"):
            from .api.errors import error_response

            response = error_response(
                429, "rate_limited", f"{exc.description} Retry after {seconds} s."
            )
        elif request.headers.get("HX-Request") and request.endpoint in SENDS:
            # An htmx send: the message goes under the composer, as its other errors do.
            text = f"{exc.description} Try again in {_wait_text(seconds)}."
            response = Response(escape(text), 429, mimetype="text/html")
            htmx.retarget(response, "#composer-error", "innerHTML")
        else:
            html = render_template(
                "error.html", error=exc, hint=f"Try again in {_wait_text(seconds)}."
            )
            response = Response(html, 429, mimetype="text/html")
        response.headers["Retry-After"] = str(seconds)
        return response
