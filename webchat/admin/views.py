"""The admin page: accounts with storage and actions, and the audit log."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from .. import audit
from ..auth import services as accounts
from ..auth.forms import ConfirmForm
from ..errors import InvalidInput
from ..extensions import db
from ..models import User
from . import services

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
@login_required
def _admins_only() -> None:
    if not current_user.is_admin:
        abort(404)


def _user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404, "No such account.")
    return user


@bp.get("/")
def index():
    """Every account with its storage and actions; everyone's recent audit events."""
    return _page()


def _page(reset_link: tuple[str, str] | None = None) -> str:
    return render_template(
        "admin/index.html",
        rows=services.storage(),
        events=audit.recent(),
        form=ConfirmForm(formdata=None),
        human_bytes=services.human_bytes,
        reset_link=reset_link,
    )


@bp.post("/users/<int:user_id>/<any(disable, enable):action>")
def set_disabled(user_id: int, action: str):
    """Disable an account (its sessions and tokens stop at once) or enable it again."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    user = _user(user_id)
    try:
        accounts.set_disabled(user, action == "disable", actor=current_user._get_current_object())
    except InvalidInput as exc:
        db.session.rollback()
        flash(exc.message)
    else:
        db.session.commit()
        flash(f"{user.email} is {action}d.")
    return redirect(url_for(".index"), 303)


@bp.post("/users/<int:user_id>/reset-link")
def reset_link(user_id: int):
    """Make a one-time password-reset link for an account and show it, this once."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    user = _user(user_id)
    token = accounts.reset_token(user, actor=current_user._get_current_object())
    db.session.commit()
    link = url_for("auth.reset_password", token=token, _external=True)
    return _page(reset_link=(user.email, link))
