"""Account operations shared by the pages and the CLI: sign up, sign in (argon2, rehashed when
older), password rules, change and reset, sign out everywhere, disable, delete. Functions flush;
callers commit. Security events go to the audit log (:mod:`webchat.audit`) from here.
"""

from __future__ import annotations

import hashlib
from functools import cache

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, func, select

from .. import audit
from ..errors import InvalidInput
from ..extensions import db
from ..models import Conversation, User, utcnow

MAX_PASSWORD_CHARS = 256
RESET_SALT = "webchat.password-reset"


@cache
def common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords of zxcvbn's kept frequency list (lower case)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(p.lower() for p in FREQUENCY_LISTS["passwords"])


def check_new_password(password: str, email: str | None = None) -> None:
    """Raise :class:`InvalidInput` (field ``password``) for a password under
    ``PASSWORD_MIN_CHARS`` or over 256 characters, among the 30,000 most common ones, or the
    account's own email (or its name part)."""
    least = current_app.config["PASSWORD_MIN_CHARS"]
    if len(password) < least:
        raise InvalidInput(f"The password needs at least {least} characters.", field="password")
    if len(password) > MAX_PASSWORD_CHARS:
        raise InvalidInput(
            f"The password is over {MAX_PASSWORD_CHARS} characters.", field="password"
        )
    lowered = password.lower()
    mine = {normalize_email(email), normalize_email(email).split("@")[0]} if email else set()
    if lowered in common_passwords() or lowered in mine:
        raise InvalidInput(
            "This password is too common (it is on lists attackers try first); choose another.",
            field="password",
        )


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

    Raises :class:`InvalidInput` when the email is taken or the password is refused (see
    :func:`check_new_password`).
    """
    check_new_password(password, email)
    if find_user(email) is not None:
        raise InvalidInput("An account with this email exists already.", field="email")
    first = user_count() == 0
    user = User(email=normalize_email(email), is_admin=first if admin is None else admin)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    return user


def authenticate(email: str, password: str) -> User | None:
    """The account if ``password`` is right for ``email``, else None (no hint which was wrong).

    A right password with an older hash is rehashed with argon2. Every attempt is audited.
    Raises :class:`InvalidInput` when the password is right but the account is disabled."""
    user = find_user(email)
    if user is None:
        _equal_time(password)
        audit.record("signin_failed", email=normalize_email(email)[:320])
        return None
    if not user.check_password(password):
        audit.record("signin_failed", user)
        return None
    if not user.is_active:
        audit.record("signin_failed", user, reason="disabled")
        raise InvalidInput("This account is disabled; ask the server's operator.", "password")
    if user.password_needs_rehash():
        user.set_password(password)
    audit.record("signin", user)
    return user


def _equal_time(password: str) -> None:
    """Spend as long as checking a real password, so a missing account is not told by time."""
    User(password_hash=_dummy_hash()).check_password(password)


@cache
def _dummy_hash() -> str:
    user = User()
    user.set_password("not a password anyone has")
    return user.password_hash


def sign_out_everywhere(
    user: User, event: str = "signed_out_everywhere", actor: User | None = None
) -> None:
    """Invalidate every session and remember-me cookie of ``user`` (raise its generation) and
    audit it as ``event``."""
    user.session_generation = (user.session_generation or 0) + 1
    audit.record(event, user, actor=actor)


def change_password(user: User, current: str, new: str) -> None:
    """Set a new password after checking the current one; every other session ends.

    Raises :class:`InvalidInput` (field ``current`` or ``password``)."""
    if not user.check_password(current):
        raise InvalidInput("The current password is wrong.", field="current")
    check_new_password(new, user.email)
    user.set_password(new)
    sign_out_everywhere(user, "password_changed")
    db.session.flush()


def delete_account(user: User, confirmation: str, password: str) -> None:
    """Delete ``user`` with every conversation (messages, runs, search entries), API token
    and audit event of theirs. ``confirmation`` must be the account's email, ``password`` its
    password. One event stays: ``account_deleted`` with the former id, no email.

    Raises :class:`InvalidInput` (field ``confirmation`` or ``password``)."""
    if normalize_email(confirmation) != user.email:
        raise InvalidInput("Type your email exactly to confirm.", field="confirmation")
    if not user.check_password(password):
        raise InvalidInput("The password is wrong.", field="password")
    user_id = user.id
    db.session.execute(delete(Conversation).where(Conversation.user_id == user_id))
    db.session.execute(delete(User).where(User.id == user_id))
    db.session.expunge(user)
    audit.record("account_deleted", former_user_id=user_id)


def set_disabled(user: User, disabled: bool, actor: User | None = None) -> None:
    """Disable (or enable) an account. Disabling ends its sessions at their next request and
    stops its API tokens at once. Raises :class:`InvalidInput` for the last active admin."""
    if disabled and user.is_admin and user.is_active:
        admins = db.session.scalar(
            select(func.count(User.id)).where(User.is_admin, User.disabled_at.is_(None))
        )
        if (admins or 0) <= 1:
            raise InvalidInput("The last admin cannot be disabled.", field="user")
    if disabled:
        user.disabled_at = user.disabled_at or utcnow()
        sign_out_everywhere(user, "account_disabled", actor)
    else:
        user.disabled_at = None
        audit.record("account_enabled", user, actor=actor)
    db.session.flush()


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=RESET_SALT)


def _fingerprint(user: User) -> str:
    """Changes whenever the password does: a used reset link is worthless."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def reset_token(user: User, actor: User | None = None) -> str:
    """A one-time password-reset token for ``user`` (itsdangerous, signed with the secret key):
    good for ``RESET_LINK_MAX_AGE_S`` seconds and until the password changes."""
    audit.record("reset_link_created", user, actor=actor)
    return str(_serializer().dumps({"u": user.id, "f": _fingerprint(user)}))


def user_for_reset(token: str) -> User | None:
    """The account a live reset ``token`` is for, or None (bad, expired or already used)."""
    try:
        data = _serializer().loads(token, max_age=current_app.config["RESET_LINK_MAX_AGE_S"])
    except BadSignature:
        return None
    user = db.session.get(User, data.get("u")) if isinstance(data, dict) else None
    if user is None or data.get("f") != _fingerprint(user):
        return None
    return user


def reset_password(user: User, new: str) -> None:
    """Set the password from a reset link; every session ends. Raises :class:`InvalidInput`."""
    check_new_password(new, user.email)
    user.set_password(new)
    sign_out_everywhere(user, "password_reset")
    db.session.flush()
