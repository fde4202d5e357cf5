"""The API's blueprint and its OpenAPI 3.1 generator (spectree, from the pydantic models).

A route joins the API and its document by taking the ``api`` blueprint and ``@spec.validate``::

    @bp.get("/things/<uuid:thing_id>")
    @spec.validate(query=ThingQuery, resp=responses(200, ThingOut, 404), tags=["things"])
    def show_thing(thing_id):
        query = query_args()           # the validated ThingQuery
        user = current_api_user()      # webchat.api.auth
        ...
        return ThingOut(...)           # or (model, 201); spectree serializes it

spectree validates the query and JSON body before the view runs; a failure becomes the API's
400 with each field at fault (see :mod:`.errors`). Mode "strict": only routes decorated by
``spec`` are in the document.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

from flask import Blueprint, request
from spectree import Response, SpecTree

from .errors import fail
from .schemas import ErrorBody

bp = Blueprint("api", __name__, url_prefix="/api/v1")

_ERRORS = {
    400: "Invalid input; details.fields names each field at fault.",
    401: "No credentials, or a bad or revoked token.",
    404: "No such id, or another user's.",
    409: "Conflict: a reply of the conversation is still running.",
    413: "Body over MAX_CONTENT_LENGTH bytes, or a message over MAX_MESSAGE_CHARS characters.",
}


def _field(location: tuple[Any, ...]) -> str:
    parts = [str(part) for part in location if part not in ("body", "query", "__root__")]
    return ".".join(parts) or "body"


def _reject_invalid(
    req: Any, resp: Any, error: Exception | None, instance: Any, adapter: Any
) -> None:
    """spectree's ``before`` hook: turn a validation failure (or a body that is not JSON) into
    the API's 400 error."""
    has_body = request.method in ("POST", "PUT", "PATCH") and request.get_data(cache=True)
    if has_body and (not request.is_json or request.get_json(silent=True) is None):
        fail(400, "The body must be a JSON object (Content-Type: application/json).")
    if error is not None:
        fields: dict[str, str] = {}
        for problem in adapter.validation_errors(error):
            fields.setdefault(_field(tuple(problem.get("loc", ()))), problem.get("msg", "invalid"))
        fail(400, "Some input is invalid; see details.fields.", fields=fields)


spec = SpecTree(
    "flask",
    mode="strict",
    title="webchat API",
    version="1.0.0",
    description=(
        "Conversations, messages and their streams, as the pages have them. Authenticate with "
        "`Authorization: Bearer <token>` (tokens: Settings page, or `flask tokens create`), or "
        "with the browser's session (same origin; unsafe methods need `X-CSRFToken`). Errors "
        'are `{"error": {"code", "message", "details"?}}`.'
    ),
    openapi_version="3.1.0",
    naming_strategy=lambda model: model.__name__,
    nested_naming_strategy=lambda _parent, child: child,
    validation_error_status=400,
    validation_error_model=ErrorBody,
    before=_reject_invalid,
    annotations=False,
    security_schemes=[
        {"name": "bearer", "data": {"type": "http", "scheme": "bearer"}},
        {"name": "session", "data": {"type": "apiKey", "name": "session", "field_in": "cookie"}},
    ],
    security=[{"bearer": []}, {"session": []}],
)
# spectree finds the routes through the blueprint's registration state; its own document and UI
# routes are not used (the document is served at /api/v1/openapi.json by webchat.api.views).
bp.record(lambda state: setattr(spec.backend, "blueprint_state", state))


def responses(status: int, model: Any = None, *errors: int) -> Response:
    """spectree responses: ``status`` with ``model`` (or no body), 401 always, and each of
    ``errors`` (400, 404, 409, 413) as the API's error body."""
    codes: dict[str, Any] = {f"HTTP_{status}": model}
    for code in (401, *errors):
        codes[f"HTTP_{code}"] = (ErrorBody, _ERRORS[code])
    return Response(**codes)


def query_args() -> Any:
    """The validated query model of this request (set by ``spec.validate(query=...)``)."""
    return request.context.query  # type: ignore[attr-defined]


def json_body() -> Any:
    """The validated JSON body model of this request (set by ``spec.validate(json=...)``)."""
    return request.context.json  # type: ignore[attr-defined]


def documented(decorator: Callable[[Callable], Callable]) -> Callable[[Callable], Callable]:
    """Put a view in the document through ``decorator`` (a ``spec.validate(...)``) without
    letting spectree run around it: spectree reads a response's whole body, which a stream
    must not have read."""

    def wrap(view: Callable) -> Callable:
        described = decorator(view)

        @functools.wraps(view)
        def run(*args: Any, **kwargs: Any) -> Any:
            return view(*args, **kwargs)

        run.__wrapped__ = described  # type: ignore[attr-defined]  # where spectree looks
        return run

    return wrap


EVENT_STREAM = {"text/event-stream": {"schema": {"type": "string"}}}


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document: spectree's, with the ``text/event-stream`` body of streams (which
    spectree cannot describe). Built once per process."""
    document = copy.deepcopy(spec.spec)
    for path, operations in document["paths"].items():
        if path.endswith("/stream") and "get" in operations:
            operations["get"]["responses"]["200"]["content"] = EVENT_STREAM
    return document
