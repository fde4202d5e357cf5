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
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import Blueprint, request
from spectree import Response, SpecTree

from ..providers import available_models
from .errors import fail
from .schemas import NOT_BLANK, ErrorBody

bp = Blueprint("api", __name__, url_prefix="/api/v1")

_ERRORS = {
    400: "Invalid input; details.fields names each field at fault.",
    401: "No credentials, or a bad or revoked token.",
    403: "Not allowed here by the server's settings.",
    404: "No such id, or another user's.",
    409: "Conflict: a reply of the conversation is still running (or a tool call awaits "
    "approval), or the thing exists already.",
    413: "Body over MAX_CONTENT_LENGTH bytes, or a message over MAX_MESSAGE_CHARS characters.",
}


# pydantic error types that say most about a value inside a union (metadata's JSON values)
_TELLING = ("string_pattern_mismatch", "value_error", "extra_forbidden", "missing")


def field_errors(problems: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """``{field: message}`` from pydantic's errors (``ValidationError.errors()``): the top-level
    field (query parameter or body property) at fault, with the most telling message about it."""
    problems = sorted(problems, key=lambda p: p.get("type") not in _TELLING)
    fields: dict[str, str] = {}
    for problem in problems:
        location = [str(p) for p in problem.get("loc", ()) if p not in ("body", "query")]
        message = problem.get("msg", "invalid")
        if problem.get("type") == "string_pattern_mismatch" and NOT_BLANK in message:
            message = "It is empty: write at least one visible character (and no NUL)."
        fields.setdefault(location[0] if location else "body", message)
    return fields


def _reject_invalid(
    req: Any, resp: Any, error: Exception | None, instance: Any, adapter: Any
) -> None:
    """spectree's ``before`` hook: turn a validation failure (or a body that is not JSON) into
    the API's 400 error."""
    has_body = request.method in ("POST", "PUT", "PATCH") and request.get_data(cache=True)
    if has_body and (not request.is_json or not isinstance(request.get_json(silent=True), dict)):
        fail(400, "The body must be a JSON object (Content-Type: application/json).")
    if error is not None:
        fields = field_errors(adapter.validation_errors(error))
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


def responses(
    status: int, model: Any = None, *errors: int, also: Mapping[int, Any] | None = None
) -> Response:
    """spectree responses: ``status`` with ``model`` (or no body), any other success status
    ``also`` maps to its model, 401 always, and each of ``errors`` (400, 404, 409, 413) as the
    API's error body."""
    codes: dict[str, Any] = {f"HTTP_{status}": model}
    codes |= {f"HTTP_{code}": body for code, body in (also or {}).items()}
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

        run.__wrapped__ = described  # where spectree looks for its metadata
        return run

    return wrap


# One event of a reply's stream (the HTML standard's event stream format): its ``data`` is a
# JSON object, per event type as webchat.api.stream describes.
EVENT_STREAM = {
    "text/event-stream": {
        "schema": {
            "type": "object",
            "properties": {
                "event": {"enum": ["delta", "tool_call", "tool_result", "error", "done"]},
                "id": {"type": "string", "description": "<message id>:<offset> or :end"},
                "data": {"type": "string", "contentMediaType": "application/json"},
            },
            "required": ["event", "data"],
        }
    }
}


@functools.cache
def _document() -> dict[str, Any]:
    document = copy.deepcopy(spec.spec)
    schemas = document["components"]["schemas"]
    _close_pattern_properties(document)
    for path, operations in document["paths"].items():
        if path.endswith("/stream") and "get" in operations:
            operations["get"]["responses"]["200"]["content"] = EVENT_STREAM
        for operation in operations.values():
            # spectree marks every body required; one whose fields are all optional may be left
            # out (POST /conversations with no body creates a conversation with the defaults).
            body = operation.get("requestBody")
            if body and "application/json" in body["content"]:  # not a multipart upload
                ref = body["content"]["application/json"]["schema"]["$ref"]
                body["required"] = bool(schemas[ref.rsplit("/", 1)[1]].get("required"))
    return document


def _close_pattern_properties(node: Any) -> None:
    """pydantic describes ``dict[<constrained str>, V]`` by ``patternProperties`` alone, which
    lets any other key through; it validates keys by that pattern, so no other key is allowed."""
    if isinstance(node, dict):
        if "patternProperties" in node:
            node.setdefault("additionalProperties", False)
        for value in node.values():
            _close_pattern_properties(value)
    elif isinstance(node, list):
        for value in node:
            _close_pattern_properties(value)


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document: spectree's (built once per process), with the ``text/event-stream``
    body of streams, which spectree cannot describe, bodies without required fields optional,
    and the model ids this server offers now as the ``enum`` of every model field (marked
    ``x-webchat-enum: models`` in the schemas), its tool servers that of every tool server name
    (``x-webchat-enum: tool_servers``)."""
    document = copy.deepcopy(_document())
    from flask import current_app

    from ..mcp import registry

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    enums = {"models": available_models(), "tool_servers": registry.server_names(app)}
    stack: list[Any] = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            tag = node.pop("x-webchat-enum", None)
            if tag in enums:
                node["enum"] = enums[tag]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return document
