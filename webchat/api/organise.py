"""The API's routes of projects and share links (a conversation's project and tags are fields
of its own routes, in :mod:`.views`).

Another user's project or share is a 404, through
:func:`webchat.conversations.projects.owned_project` and
:func:`webchat.shares.services.owned_share`. ``GET /shared/{share_id}`` needs no token: the
share id is the secret.
"""

from __future__ import annotations

import uuid

from flask import g, url_for

from ..conversations import projects
from ..conversations.services import NotFound
from ..errors import InvalidInput
from ..extensions import db
from ..models import Project, Share
from ..shares import services as shares
from .auth import current_api_user, public
from .base import bp, json_body, query_args, responses, spec
from .errors import fail
from .schemas import (
    ProjectCreate,
    ProjectList,
    ProjectOut,
    ProjectPatch,
    ShareCreate,
    SharedConversation,
    SharedFile,
    SharedMessage,
    SharedQuery,
    ShareList,
    ShareOut,
    SharePatch,
)
from .views import _conversation


def _project(project_id: uuid.UUID) -> Project:
    try:
        return projects.owned_project(current_api_user(), project_id)
    except NotFound:
        fail(404, "No such project.")


def _share(share_id: str) -> Share:
    try:
        return shares.owned_share(current_api_user(), share_id)
    except NotFound:
        fail(404, "No such share link.")


def share_out(share: Share) -> ShareOut:
    """``share`` with its absolute page and JSON URLs."""
    return ShareOut.of(
        share,
        url_for("shares.show", share_id=share.id, _external=True),
        url_for(".get_shared", share_id=share.id, _external=True),
    )


@bp.post("/projects")
@spec.validate(json=ProjectCreate, resp=responses(201, ProjectOut, 400, 413), tags=["projects"])
def create_project():
    """Create a project: a named folder of conversations with its instructions and default
    model."""
    body: ProjectCreate = json_body()
    project = projects.create_project(
        current_api_user(), body.name, body.instructions, body.default_model
    )
    db.session.commit()
    return ProjectOut.of(project), 201


@bp.get("/projects")
@spec.validate(resp=responses(200, ProjectList), tags=["projects"])
def list_projects():
    """The caller's projects, by name."""
    return ProjectList(items=[ProjectOut.of(p) for p in projects.projects_of(current_api_user())])


@bp.get("/projects/<uuid:project_id>")
@spec.validate(resp=responses(200, ProjectOut, 404), tags=["projects"])
def get_project(project_id: uuid.UUID):
    """A project (its conversations: GET /conversations?project_id=)."""
    return ProjectOut.of(_project(project_id))


@bp.patch("/projects/<uuid:project_id>")
@spec.validate(json=ProjectPatch, resp=responses(200, ProjectOut, 400, 404, 413), tags=["projects"])
def update_project(project_id: uuid.UUID):
    """Change a project's name, instructions or default model."""
    project = _project(project_id)
    patch: ProjectPatch = json_body()
    projects.update_project(project, {key: getattr(patch, key) for key in patch.model_fields_set})
    db.session.commit()
    return ProjectOut.of(project)


@bp.delete("/projects/<uuid:project_id>")
@spec.validate(resp=responses(204, None, 404), tags=["projects"])
def delete_project(project_id: uuid.UUID):
    """Delete a project; its conversations are kept, in no project."""
    projects.delete_project(_project(project_id))
    db.session.commit()
    return "", 204


@bp.post("/conversations/<uuid:conversation_id>/shares")
@spec.validate(json=ShareCreate, resp=responses(201, ShareOut, 400, 404, 409), tags=["shares"])
def create_share(conversation_id: uuid.UUID):
    """Create a share link: a read-only snapshot of the conversation now (later messages are
    not shown until the share is updated). 409 while a reply streams."""
    conversation = _conversation(conversation_id)
    body: ShareCreate = json_body()
    share = shares.create_share(
        current_api_user(),
        conversation,
        all_branches=body.all_branches,
        include_tools=body.include_tools,
        include_files=body.include_files,
        expires_at=body.expires_at,
    )
    db.session.commit()
    return share_out(share), 201


@bp.get("/shares")
@spec.validate(resp=responses(200, ShareList), tags=["shares"])
def list_shares():
    """The caller's share links, newest first, with their views."""
    return ShareList(items=[share_out(s) for s in shares.shares_of(current_api_user())])


@bp.patch("/shares/<share_id>")
@spec.validate(json=SharePatch, resp=responses(200, ShareOut, 400, 404, 409), tags=["shares"])
def update_share(share_id: str):
    """Change a share's options or expiry; ``refresh``: a new snapshot (newer messages)."""
    share = _share(share_id)
    patch: SharePatch = json_body()
    fields = {k: getattr(patch, k) for k in patch.model_fields_set if k != "refresh"}
    shares.update_share(share, fields, refresh=patch.refresh)
    db.session.commit()
    return share_out(share)


@bp.delete("/shares/<share_id>")
@spec.validate(resp=responses(204, None, 404), tags=["shares"])
def delete_share(share_id: str):
    """Revoke a share link: a 404 from now on."""
    shares.revoke(_share(share_id))
    db.session.commit()
    return "", 204


@bp.get("/shared/<share_id>")
@public
@spec.validate(
    query=SharedQuery, resp=responses(200, SharedConversation, 400, 404), tags=["shares"]
)
def get_shared(share_id: str):
    """A shared conversation, read-only, for anyone with its id (no token): the newest page of
    the shared path, paged back with ``?before=``. 404 once revoked or expired."""
    try:
        share, conversation = shares.public_share(share_id)
    except NotFound:
        fail(404, "This shared link does not exist, was revoked, or has expired.")
    query: SharedQuery = query_args()
    try:
        shown = shares.shared_window(
            share,
            limit=query.limit,
            before=str(query.before) if query.before else None,
            leaf=str(query.leaf) if query.leaf else None,
        )
    except InvalidInput as exc:
        fail(exc.status, exc.message)
    shares.count_view(share)
    db.session.commit()
    g.robots = "noindex"  # the after_request hook below sends X-Robots-Tag
    older = shown.window.older
    attached = shares.shared_files(share, shown.messages)  # one query; none unless included
    return SharedConversation(
        title=conversation.title,
        all_branches=share.all_branches,
        snapshot_at=share.updated_at,
        messages=[
            SharedMessage(
                id=m.id,
                parent_id=m.parent_id,
                role=m.role,  # type: ignore[arg-type]
                content=m.content or "",
                tool_name=m.tool_name,
                tool_call=m.tool_call,
                tool_result=m.tool_result,
                files=[
                    SharedFile(
                        id=f.id,
                        name=f.name,
                        media_type=f.media_type,
                        size=f.size,
                        url=url_for("shares.file", share_id=share.id, file_id=f.id),
                    )
                    for f in attached.get(m.id, ())
                ],
                created_at=m.created_at,
            )
            for m in shown.messages
        ],
        has_more=older is not None,
        next_cursor=str(older.id) if older is not None else None,
    )


@bp.after_request
def _no_index_shared(response):
    """The shared conversation's JSON carries ``X-Robots-Tag: noindex``, as its page does."""
    if g.get("robots"):
        response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response
