"""Project pages: create a project, its page (its conversations, paged; its settings; "New chat
in this project"), update and delete it, and its conversations for the sidebar (htmx)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, make_response, redirect, render_template, url_for
from flask_login import current_user, login_required
from htmx_flask import request  # flask's request, typed with .htmx

from .. import htmx
from ..errors import InvalidInput
from ..extensions import db
from ..models import Project
from ..providers import available_models
from . import paging, projects
from .services import NotFound

bp = Blueprint("projects", __name__, url_prefix="/projects")

SIDEBAR_ITEMS = 20  # as conversations.views.SIDEBAR_PROJECT_ITEMS


def _project_or_404(project_id: str) -> Project:
    try:
        return projects.owned_project(current_user, project_id)
    except NotFound:
        abort(404, "No such project.")


def _form() -> dict:
    return {
        "name": request.form.get("name"),
        "instructions": request.form.get("instructions"),
        "default_model": request.form.get("default_model"),
    }


def _page(project: Project, status: int = 200, **extra):
    """The project page: a page of its conversations from ``?cursor=``, its settings form."""
    try:
        start = request.args.get("cursor")
        cursor = paging.ConversationCursor.parse(start) if start else None
    except InvalidInput:
        abort(400, "This list of conversations has changed; reload the page.")
    items, more = paging.conversations_page(
        current_user,
        limit=current_app.config["SIDEBAR_PAGE_SIZE"],
        cursor=cursor,
        project=project.id,
    )
    html = render_template(
        "projects/show.html",
        project=project,
        items=items,
        tag_names=projects.tag_names(items),
        more=more,
        models=available_models(),
        conversation=None,
        **paging.sidebar(current_user),
        **extra,
    )
    return htmx.vary(make_response(html, status))


@bp.get("")
@login_required
def index():
    """Every project of the user (by name) and every tag, with a form for a new project."""
    return render_template(
        "projects/index.html",
        all_projects=projects.projects_of(current_user),
        all_tags=projects.tags_of(current_user),
        conversation=None,
        **paging.sidebar(current_user),
    )


@bp.post("")
@login_required
def create():
    """Create a project (``name``, ``instructions``, ``default_model``); open its page."""
    try:
        project = projects.create_project(current_user, **_form())
    except InvalidInput as exc:
        db.session.rollback()
        abort(exc.status, exc.message)
    db.session.commit()
    return redirect(url_for(".show", project_id=project.id), 303)


@bp.get("/<project_id>")
@login_required
def show(project_id: str):
    """A project's page; for htmx with ``?sidebar=1``, its newest conversations alone, for its
    entry in the sidebar."""
    project = _project_or_404(project_id)
    if request.htmx and request.args.get("sidebar"):
        items, more = paging.conversations_page(
            current_user, limit=SIDEBAR_ITEMS, project=project.id
        )
        html = render_template(
            "projects/_sidebar_items.html", project=project, items=items, more=more
        )
        return htmx.vary(make_response(html))
    return _page(project)


@bp.post("/<project_id>")
@login_required
def update(project_id: str):
    """Change a project's name, instructions and default model; the page again, with the error
    inline for bad input."""
    project = _project_or_404(project_id)
    try:
        projects.update_project(project, _form())
    except InvalidInput as exc:
        db.session.rollback()
        return _page(project, exc.status, error=exc.message, form=_form())
    db.session.commit()
    return redirect(url_for(".show", project_id=project.id), 303)


@bp.post("/<project_id>/delete")
@login_required
def delete(project_id: str):
    """Delete a project; its conversations are kept, loose."""
    projects.delete_project(_project_or_404(project_id))
    db.session.commit()
    return redirect(url_for("conversations.index"), 303)
