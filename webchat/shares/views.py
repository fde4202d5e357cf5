"""Share link pages: the shared page (no account needed), "Continue in my account", and the
owner's actions: create from a conversation's menu, update the snapshot, revoke."""

from __future__ import annotations

from datetime import UTC, datetime, time

from flask import Blueprint, abort, current_app, make_response, redirect, render_template, url_for
from flask_login import current_user, login_required
from htmx_flask import request  # flask's request, typed with .htmx

from ..conversations.services import NotFound, owned_conversation
from ..errors import InvalidInput
from ..extensions import db
from ..files import views as file_views
from ..models import Share
from . import services

bp = Blueprint("shares", __name__)


def parse_expiry(value: str | None) -> datetime | None:
    """The end of the day ``value`` (``YYYY-MM-DD``, a date input's value) in UTC, or None
    when blank. Raises :class:`InvalidInput` (400, field ``expires_at``)."""
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise InvalidInput("The expiry is a date: YYYY-MM-DD.", field="expires_at") from None
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


def _options() -> dict:
    return {
        "all_branches": request.form.get("branches") == "all",
        "include_tools": request.form.get("include_tools") == "1",
        "include_files": request.form.get("include_files") == "1",
        "expires_at": parse_expiry(request.form.get("expires_at")),
    }


def _own_share_or_404(share_id: str) -> Share:
    try:
        return services.owned_share(current_user, share_id)
    except NotFound:
        abort(404, "No such share link.")


@bp.post("/c/<conversation_id>/shares")
@login_required
def create(conversation_id: str):
    """Create a share link of a conversation (options from the menu's form); the settings page
    then lists it first, its link ready to copy."""
    try:
        conversation = owned_conversation(current_user, conversation_id)
    except NotFound:
        abort(404, "No such conversation.")
    try:
        share = services.create_share(current_user, conversation, **_options())
    except InvalidInput as exc:
        db.session.rollback()
        abort(exc.status, exc.message)
    db.session.commit()
    return redirect(url_for("settings.index", shared=share.id, _anchor="shares"), 303)


@bp.post("/shares/<share_id>/update")
@login_required
def update(share_id: str):
    """Take a new snapshot (the conversation as it is now) for the link."""
    share = _own_share_or_404(share_id)
    try:
        services.update_share(share, {}, refresh=True)
    except InvalidInput as exc:
        db.session.rollback()
        abort(exc.status, exc.message)
    db.session.commit()
    return redirect(url_for("settings.index", _anchor="shares"), 303)


@bp.post("/shares/<share_id>/revoke")
@login_required
def revoke(share_id: str):
    """Revoke the link: a 404 from now on."""
    services.revoke(_own_share_or_404(share_id))
    db.session.commit()
    return redirect(url_for("settings.index", _anchor="shares"), 303)


def _public_or_404(share_id: str):
    try:
        return services.public_share(share_id)
    except NotFound:
        abort(404, "This shared link does not exist, was revoked, or has expired.")


@bp.get("/s/<share_id>")
def show(share_id: str):
    """The shared conversation, read-only, for anyone with the link: paged (``?before=``,
    ``?after=``), every branch's versions when shared (``?leaf=``), no composer, no sidebar,
    nothing of the owner's account. ``noindex`` in a meta tag and ``X-Robots-Tag``."""
    share, conversation = _public_or_404(share_id)
    try:
        shown = services.shared_window(
            share,
            limit=current_app.config["PAGE_SIZE"],
            before=request.args.get("before"),
            after=request.args.get("after"),
            leaf=request.args.get("leaf"),
        )
    except InvalidInput as exc:
        abort(exc.status, exc.message)
    services.count_view(share)
    db.session.commit()
    html = render_template(
        "shares/show.html",
        share=share,
        title=conversation.title,
        shown=shown,
        leaf=request.args.get("leaf") if share.all_branches else None,
        attachments=services.shared_files(share, shown.messages),  # one query, as on /c/<id>
    )
    response = make_response(html)
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _shared_file_or_404(share_id: str, file_id: str):
    share, _conversation = _public_or_404(share_id)
    try:
        return services.shared_file(share, file_id)
    except NotFound:
        abort(404)


def _unindexed(response):
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "private, no-cache"  # a revoked link stops at once
    return response


@bp.get("/s/<share_id>/files/<file_id>")
def file(share_id: str, file_id: str):
    """A file of a message the share shows, when the share includes files; served as to its
    owner (:func:`webchat.files.views.send`), ``noindex``. Otherwise a 404."""
    return _unindexed(file_views.file_answer(_shared_file_or_404(share_id, file_id)))


@bp.get("/s/<share_id>/files/<file_id>/thumbnail")
def file_thumbnail(share_id: str, file_id: str):
    """An image's thumbnail under the share, on the same terms as :func:`file`."""
    return _unindexed(file_views.thumbnail_answer(_shared_file_or_404(share_id, file_id)))


@bp.post("/s/<share_id>/continue")
def continue_share(share_id: str):
    """Fork the shared path into the signed-in viewer's conversations and open the copy; a
    signed-out viewer is sent to sign in first."""
    share, _conversation = _public_or_404(share_id)
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=url_for(".show", share_id=share.id)), 303)
    try:
        copy = services.continue_share(current_user, share, request.form.get("leaf") or None)
    except InvalidInput as exc:
        db.session.rollback()
        abort(exc.status, exc.message)
    db.session.commit()
    return redirect(url_for("conversations.show", conversation_id=copy.id), 303)
