"""The settings page: the user's shared links (``settings/_shares.html``); API tokens (one
template serves the page and, for htmx, the tokens section alone: ``settings/_tokens.html``);
the account: change the password, sign out everywhere, recent activity, delete the account
(``settings/_account.html``)."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from htmx_flask import request  # flask's request, typed with .htmx
from wtforms import StringField
from wtforms.validators import Length

from .. import audit, htmx
from ..api import tokens
from ..auth import services as accounts
from ..auth.forms import ChangePasswordForm, ConfirmForm, DeleteAccountForm
from ..conversations import paging
from ..errors import InvalidInput, submit
from ..extensions import db
from ..models import ApiToken
from ..shares.services import shares_of

bp = Blueprint("settings", __name__, url_prefix="/settings")


class TokenForm(FlaskForm):
    """The name of a new API token (optional, at most 100 characters)."""

    name = StringField("Name", validators=[Length(max=tokens.NAME_CHARS)])


def _page(
    form: TokenForm | None = None,
    new_token: str | None = None,
    new_row: ApiToken | None = None,
    status: int = 200,
):
    """The settings page, or for htmx its tokens section, with ``new_token`` shown once."""
    context = {
        "form": form or TokenForm(formdata=None),
        "tokens": tokens.tokens_of(current_user),
        "new_token": new_token,
        "new_row": new_row,
    }
    if request.htmx:
        html = render_template("settings/_tokens.html", **context)
    else:
        html = render_template(
            "settings/index.html", **paging.sidebar(current_user), **context, **_account()
        )
    return htmx.vary(make_response(html, status))


def _account(**forms) -> dict:
    """The account section's context: its forms (fresh unless given) and recent events."""
    return {
        "password_form": forms.get("password_form") or ChangePasswordForm(formdata=None),
        "delete_form": forms.get("delete_form") or DeleteAccountForm(formdata=None),
        "confirm_form": ConfirmForm(formdata=None),
        "events": audit.events_of(current_user),
        "shares": shares_of(current_user),
        "shared": request.args.get("shared"),
    }


def _account_page(status: int, **forms):
    """The whole settings page with the account section's forms as posted (errors shown)."""
    html = render_template(
        "settings/index.html",
        **paging.sidebar(current_user),
        form=TokenForm(formdata=None),
        tokens=tokens.tokens_of(current_user),
        new_token=None,
        new_row=None,
        **_account(**forms),
    )
    return make_response(html, status)


@bp.post("/password")
@login_required
def change_password():
    """Change the password (the current one required); other sessions end, this one stays."""
    form = ChangePasswordForm()
    user = current_user._get_current_object()

    def change() -> None:
        accounts.change_password(user, form.current.data, form.password.data)

    if form.validate_on_submit() and submit(form, change, "password"):
        cookie = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
        login_user(user, remember=cookie in request.cookies)  # this browser, new generation
        flash("Your password is changed. Every other session is signed out.")
        return redirect(url_for(".index"), 303)
    return _account_page(400, password_form=form)


@bp.post("/sessions/revoke")
@login_required
def sign_out_everywhere():
    """End every session of the user (this one too)."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    accounts.sign_out_everywhere(current_user._get_current_object())
    db.session.commit()
    logout_user()
    flash("You are signed out everywhere.")
    return redirect(url_for("auth.login"), 303)


@bp.post("/delete")
@login_required
def delete_account():
    """Delete the account and everything in it, after typed confirmation and the password."""
    form = DeleteAccountForm()
    user = current_user._get_current_object()

    def delete() -> None:
        accounts.delete_account(user, form.confirmation.data, form.password.data)

    if form.validate_on_submit() and submit(form, delete, "confirmation"):
        logout_user()
        flash("Your account and everything in it are deleted.")
        return redirect(url_for("auth.login"), 303)
    return _account_page(400, delete_form=form)


@bp.get("/")
@login_required
def index():
    """The settings page: API tokens and a form to create one."""
    return _page()


@bp.post("/tokens")
@login_required
def create_token():
    """Create an API token and show it, this once."""
    form = TokenForm()
    if not form.validate_on_submit():
        return _page(form, status=400)
    try:
        row, token = tokens.create_token(current_user, form.name.data)
    except InvalidInput as exc:
        db.session.rollback()
        form.name.errors = [exc.message]
        return _page(form, status=400)
    db.session.commit()
    return _page(new_token=token, new_row=row, status=201)


@bp.post("/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    """Revoke one of the user's API tokens; requests with it fail from now on."""
    try:
        tokens.revoke(tokens.owned_token(current_user, token_id))
    except tokens.TokenNotFound:
        abort(404, "No such token.")
    db.session.commit()
    if request.htmx:
        return _page()
    return redirect(url_for(".index"), 303)


def _tool_servers(status: int = 200, error: str | None = None, form: dict | None = None):
    """The tool servers section (``settings/_tools.html``) for htmx, ``error`` shown inline."""
    from ..mcp import registry

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    html = render_template(
        "settings/_tools.html",
        servers=registry.overview(app, current_user.id),
        user_hosts=app.config["MCP_USER_HOSTS"],
        error=error,
        form=form or {},
    )
    return htmx.vary(make_response(html, status))


@bp.get("/tools")
@login_required
def tool_servers():
    """The tool servers section: each server's state and tools (the page loads it after)."""
    if not request.htmx:
        return redirect(url_for(".index"))
    return _tool_servers()


@bp.post("/tools")
@login_required
def add_tool_server():
    """Add a Streamable HTTP MCP server of the user's own (form fields ``name``, ``url``)."""
    from ..mcp import registry

    form = {"name": request.form.get("name", ""), "url": request.form.get("url", "")}
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        registry.add_user_server(app, current_user.id, form["name"], form["url"])
    except InvalidInput as exc:
        db.session.rollback()
        if not request.htmx:
            abort(exc.status, exc.message)
        return _tool_servers(exc.status, exc.message, form)
    db.session.commit()
    if not request.htmx:
        return redirect(url_for(".index"), 303)
    return _tool_servers()


@bp.post("/tools/<int:server_id>/delete")
@login_required
def remove_tool_server(server_id: int):
    """Remove one of the user's own MCP servers (another user's id is a 404)."""
    from ..conversations.services import NotFound
    from ..mcp import registry

    try:
        registry.remove_user_server(current_user.id, server_id)
    except NotFound:
        abort(404, "No such tool server.")
    db.session.commit()
    if not request.htmx:
        return redirect(url_for(".index"), 303)
    return _tool_servers()
