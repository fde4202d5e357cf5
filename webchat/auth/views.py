"""Sign up, sign in and sign out pages."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from .. import audit
from ..errors import InvalidInput, submit
from ..extensions import db, login_manager
from ..models import User
from . import services
from .forms import ResetPasswordForm, SignInForm, SignUpForm

bp = Blueprint("auth", __name__)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """Flask-Login's loader: the user of the session (or remember-me) cookie, whose id is
    ``<id>:<session generation>`` (a bare ``<id>``, from before 0008, is generation 0). None —
    signed out — for an older generation or a disabled account."""
    uid, _, generation = user_id.partition(":")
    if not uid.isdigit() or not (generation or "0").isdigit():
        return None
    user = db.session.get(User, int(uid))
    if user is None or not user.is_active or int(generation or 0) != user.session_generation:
        return None
    return user


def _next_url() -> str:
    target = request.args.get("next", "")
    parts = urlsplit(target)
    if target.startswith("/") and not parts.netloc and not parts.scheme:
        return target
    return url_for("conversations.index")


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    """Create an account (the first one is the admin) and sign in."""
    if not services.signup_open():
        abort(403, "Sign-up is closed on this server; ask its operator for an account.")
    form = SignUpForm()
    if form.validate_on_submit():
        try:
            user = services.create_user(form.email.data, form.password.data)
        except InvalidInput as exc:
            db.session.rollback()
            getattr(form, exc.field or "email").errors.append(exc.message)
        else:
            db.session.commit()
            login_user(user, remember=True)
            return redirect(url_for("conversations.index"))
    status = 400 if form.errors else 200
    first_run = services.user_count() == 0
    return render_template("auth/signup.html", form=form, first_run=first_run), status


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign in with email and password."""
    if current_user.is_authenticated:
        return redirect(url_for("conversations.index"))
    if services.user_count() == 0:
        # First run: no account can sign in yet, so every page leads to the admin's sign-up.
        return redirect(url_for("auth.signup"))
    form = SignInForm()
    if form.validate_on_submit():
        try:
            user = services.authenticate(form.email.data, form.password.data)
        except InvalidInput as exc:
            user = None
            form.password.errors.append(exc.message)
        else:
            if user is None:
                form.password.errors.append("Wrong email or password.")
        db.session.commit()  # the audit event, and a rehashed password
        if user is not None:
            login_user(user, remember=form.remember.data)
            return redirect(_next_url())
    status = 400 if form.errors else 200
    return render_template("auth/login.html", form=form, signup_open=services.signup_open()), status


@bp.post("/logout")
@login_required
def logout():
    """Sign out."""
    audit.record("signout", current_user._get_current_object())
    db.session.commit()
    logout_user()
    flash("You are signed out.")
    return redirect(url_for("auth.login"))


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    """Set a new password from a one-time reset link (``flask users reset-password``)."""
    user = services.user_for_reset(token)
    if user is None:
        abort(404, "This reset link is unknown, expired or used already.")
    form = ResetPasswordForm()

    def reset() -> None:
        services.reset_password(user, form.password.data)

    if form.validate_on_submit() and submit(form, reset, "password"):
        logout_user()
        flash("Your password is set. Sign in with it.")
        return redirect(url_for("auth.login"))
    status = 400 if form.errors else 200
    return render_template("auth/reset.html", form=form, email=user.email), status
