"""The Usage page: what the signed-in user's replies used and cost, by model and by day."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required

from ..conversations import paging
from .services import user_usage

bp = Blueprint("usage", __name__, url_prefix="/usage")


@bp.get("/")
@login_required
def index():
    """The user's token usage and cost: totals, by model, by day."""
    return render_template(
        "usage/index.html", usage=user_usage(current_user), **paging.sidebar(current_user)
    )
