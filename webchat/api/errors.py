"""The API's errors: one JSON shape for every failure under ``/api/``.

Body: ``{"error": {"code": "<snake_case>", "message": "<readable>", "details": {...}?}}``;
``details.fields`` maps each input field at fault (``"title"``, ``"limit"``, ``"metadata.x"``)
to what is wrong with it. Statuses: 400 invalid input, 401 no or bad credentials (with
``WWW-Authenticate: Bearer``), 404 unknown ids and other users' ids alike, 405, 409 a conflict
(a reply still streaming), 413 a body over ``MAX_CONTENT_LENGTH`` bytes or a message over
``MAX_MESSAGE_CHARS`` characters, 500.

Views raise :func:`fail` (or let a service's :class:`~webchat.errors.InvalidInput` /
:class:`~webchat.conversations.services.NotFound` through); :func:`register` turns them, and every
Werkzeug ``HTTPException`` raised under ``/api/``, into that body.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

from flask import Blueprint, Response, jsonify
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from ..conversations.services import NotFound
from ..errors import InvalidInput

_CODES = {400: "invalid_input", 401: "unauthorized", 403: "forbidden", 404: "not_found"}
_CODES |= {409: "conflict"}
_CODES |= {413: "too_large", 500: "internal_error"}


class ApiError(Exception):
    """An API failure with its HTTP ``status``, ``code``, readable ``message`` and ``details``."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def fail(
    status: int, message: str, *, code: str | None = None, fields: dict[str, str] | None = None
) -> NoReturn:
    """Stop the request with an API error. ``code`` defaults from ``status`` (404 →
    ``not_found``); ``fields`` maps the input fields at fault to what is wrong with each."""
    details = {"fields": fields} if fields else None
    raise ApiError(status, code or _code_for(status), message, details)


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Response:
    """The JSON response of an error (see the module docstring for the shape)."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    response = jsonify({"error": error})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="webchat"'
    return response


def _code_for(status: int) -> str:
    return _CODES.get(status, f"http_{status}")


def http_error_response(exc: HTTPException) -> Response:
    """An ``HTTPException`` (404 of an unknown URL, 405, 413 from ``MAX_CONTENT_LENGTH``…) as
    the API's JSON, keeping its headers (``Allow`` of a 405)."""
    status = exc.code or 500
    if isinstance(exc, CSRFError):
        code = "csrf_failed"
    elif status in _CODES:
        code = _CODES[status]
    else:
        code = re.sub(r"\W+", "_", (exc.name or "error").lower()).strip("_")
    message = exc.description or exc.name or "Error"
    if status == 404 and "requested URL was not found" in message:
        message = "No such API route."
    response = error_response(status, code, message)
    for name, value in exc.get_headers():
        if name.lower() not in ("content-type", "content-length"):
            response.headers[name] = value
    return response


def invalid_input_response(exc: InvalidInput) -> Response:
    """A service's :class:`InvalidInput` as the API's JSON (400, 409 or 413)."""
    details = {"fields": {exc.field: exc.message}} if exc.field else None
    return error_response(exc.status, _code_for(exc.status), exc.message, details)


def register(bp: Blueprint) -> None:
    """Install the JSON error handlers on the API blueprint."""
    bp.register_error_handler(
        ApiError, lambda e: error_response(e.status, e.code, e.message, e.details)
    )
    bp.register_error_handler(InvalidInput, invalid_input_response)
    bp.register_error_handler(NotFound, lambda e: error_response(404, "not_found", "Not found."))
    bp.register_error_handler(HTTPException, http_error_response)
