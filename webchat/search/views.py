"""The search results page (and its "more results" fragment for htmx)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, make_response, render_template, url_for
from flask_login import current_user, login_required
from htmx_flask import request  # flask's request, typed with .htmx

from .. import htmx
from ..conversations import paging
from ..errors import InvalidInput
from .query import BadCursor, Filters, Results, parse_filters, search, user_models

bp = Blueprint("search", __name__)


@bp.get("/search")
@login_required
def index():
    """Search the user's conversations: ranked hits with highlighted snippets, filterable."""
    q = request.args.get("q", "").strip()
    error, status, results = None, 200, Results()
    try:
        filters = parse_filters(request.args, current_user)
        results = search(current_user, q, filters, cursor=request.args.get("cursor"))
    except (InvalidInput, BadCursor) as exc:
        filters = Filters()
        error = getattr(exc, "message", "That page of results no longer exists.")
        status = getattr(exc, "status", 400)
    next_url = None
    if results.next_cursor:
        args: dict[str, Any] = {**request.args.to_dict(flat=False), "cursor": results.next_cursor}
        next_url = url_for(".index", **args)
    context = {"q": q, "filters": filters, "results": results, "error": error, "next_url": next_url}
    from ..files.search import search_files, takes_attachments  # it reads .query, as we do

    if not error and not request.args.get("cursor") and takes_attachments(filters):
        context["file_hits"] = search_files(current_user, q)  # issue 14: attachment hits
    if request.htmx and request.args.get("cursor"):
        fragment = make_response(render_template("search/_results.html", **context), status)
        return htmx.vary(fragment)
    page = render_template(
        "search/index.html",
        **paging.sidebar(current_user),
        conversation=None,
        models=user_models(current_user),
        **context,
    )
    return htmx.vary(make_response(page, status))
