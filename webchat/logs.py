"""Logs: a request id for every request, and (``LOG_FORMAT = "json"``) JSON lines.

Every request gets an id: the ``X-Request-ID`` header when a proxy sent a sane one (at most 64
characters of ``A-Za-z0-9._-``), else a new UUID4 hex; the response carries it back. Every log
record of the ``webchat`` loggers made during a request carries ``request_id`` and ``user_id``
(the signed-in user's or API caller's id).

JSON lines have ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``request_id``,
``user_id`` and, for an exception, ``exception`` (its type and traceback). webchat logs ids,
statuses and counts — never message content, passwords, tokens or provider keys; the JSON
formatter adds no request data of its own (no URL query, headers or body).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from datetime import UTC, datetime

from flask import Flask, Response, g, has_request_context, request

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_MARK = "_webchat_json"


def request_id() -> str | None:
    """This request's id (None outside a request)."""
    return g.get("request_id") if has_request_context() else None


def _user_id() -> int | None:
    if not has_request_context():
        return None
    api_user = g.get("api_user")
    if api_user is not None:
        return api_user.id
    user = g.get("_login_user")  # Flask-Login's cache: no user is loaded just to log
    return getattr(user, "id", None)


class ContextFilter(logging.Filter):
    """Adds ``request_id`` and ``user_id`` to every record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id()
        record.user_id = _user_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line (see the module docstring for the keys)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "user_id": getattr(record, "user_id", None),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def init_app(app: Flask) -> None:
    """Request ids on every request and response; JSON lines on stderr when configured."""
    logger = logging.getLogger("webchat")
    if not any(isinstance(f, ContextFilter) for f in logger.filters):
        logger.addFilter(ContextFilter())
    if app.config["LOG_FORMAT"] == "json":
        for handler in [h for h in logger.handlers if getattr(h, _MARK, False)]:
            logger.removeHandler(handler)
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler.addFilter(ContextFilter())
        setattr(handler, _MARK, True)
        logger.addHandler(handler)
        logger.setLevel(app.config["LOG_LEVEL"])
        logger.propagate = False

    @app.before_request
    def _request_id() -> None:
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex

    @app.context_processor
    def _request_id_in_templates() -> dict:
        return {"request_id": request_id()}  # error pages show it, to quote to the operator

    @app.after_request
    def _echo(response: Response) -> Response:
        if g.get("request_id"):
            response.headers["X-Request-ID"] = g.request_id
        return response
