"""Errors that services raise for bad input, and the pages that show HTTP errors."""

from __future__ import annotations

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


def init_app(app: Flask) -> None:
    """Render HTTP errors of the pages as a small HTML page; under ``/api/`` (an unknown API
    route too, which no blueprint handler sees) as the API's JSON error body."""

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if request.blueprint == "api" or request.path.startswith("/api/"):
            from .api.errors import http_error_response

            return http_error_response(exc)  # the API's JSON error body
        return render_template("error.html", error=exc), exc.code or 500
