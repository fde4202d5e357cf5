"""Account operations shared by the pages and the CLI. Functions flush; callers commit."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import func, select

from ..errors import InvalidInput
from ..extensions import db
from ..models import User


def normalize_email(email: str) -> str:
    """``email`` trimmed and lower-cased, the form it is stored and looked up in."""
    return email.strip().lower()


def user_count() -> int:
    """How many accounts exist."""
    return db.session.scalar(select(func.count(User.id))) or 0


def signup_open() -> bool:
    """True when a new account may sign up: always for the first, else per ``ALLOW_SIGNUP``."""
    return user_count() == 0 or bool(current_app.config["ALLOW_SIGNUP"])


def find_user(email: str) -> User | None:
    """The account with ``email`` (case-insensitive), or None."""
    return db.session.scalars(select(User).where(User.email == normalize_email(email))).first()


def create_user(email: str, password: str, *, admin: bool | None = None) -> User:
    """A new account. The first account is an admin unless ``admin=False`` is given.

    Raises :class:`InvalidInput` when the email is taken or the password is under 8 characters.
    """
    if len(password) < 8:
        raise InvalidInput("The password needs at least 8 characters.", field="password")
    if find_user(email) is not None:
        raise InvalidInput("An account with this email exists already.", field="email")
    first = user_count() == 0
    user = User(email=normalize_email(email), is_admin=first if admin is None else admin)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    return user


def authenticate(email: str, password: str) -> User | None:
    """The account if ``password`` is right for ``email``, else None (no hint which was wrong)."""
    user = find_user(email)
    if user is None or not user.check_password(password):
        return None
    return user
