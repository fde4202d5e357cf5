"""The settings page: the user's API tokens. One template serves the page and, for htmx, the
tokens section alone (``settings/_tokens.html``)."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    make_response,
    redirect,
    render_template,
    url_for,
)
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from htmx_flask import request  # flask's request, typed with .htmx
from wtforms import StringField
from wtforms.validators import Length

from .. import htmx
from ..api import tokens
from ..conversations import paging
from ..errors import InvalidInput
from ..extensions import db
from ..models import ApiToken

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
        html = render_template("settings/index.html", **paging.sidebar(current_user), **context)
    return htmx.vary(make_response(html, status))


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
