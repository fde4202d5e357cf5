"""Errors that services raise for bad input, and the pages that show HTTP errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, render_template, request
from werkzeug.exceptions import HTTPException


class InvalidInput(Exception):
    """Input a person or program must fix: ``message`` is readable, ``field`` names the culprit.

    ``status`` is the HTTP status a view answers with (400, or 413 for too-large content).
    """

    def __init__(self, message: str, field: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


def submit(form: Any, action: Callable[[], object], field: str) -> bool:
    """Run a service ``action`` for a validated ``form`` in one transaction: commit and return
    True, or on :class:`InvalidInput` roll back, show its message on the form's field at fault
    (``field`` when it names none) and return False."""
    from .extensions import db

    try:
        action()
    except InvalidInput as exc:
        db.session.rollback()
        getattr(form, exc.field or field, getattr(form, field)).errors.append(exc.message)
        return False
    db.session.commit()
    return True


def init_app(app: Flask) -> None:
    """Render HTTP errors of the pages as a small HTML page; under ``/api/`` (an unknown API
    route too, which no blueprint handler sees) as the API's JSON error body."""

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if request.blueprint == "api" or request.path.startswith("/api/"):
            from .api.errors import http_error_response

            return http_error_response(exc)  # the API's JSON error body
        return render_template("error.html", error=exc), exc.code or 500
