"""Per-user API tokens: create (the token is shown once), find the user of a bearer token, list,
revoke; and the ``flask tokens`` commands.

A token is ``wc_`` and 43 URL-safe characters (32 random bytes, base64url, RFC 4648 §5). Only its
SHA-256 (64 hex characters) is stored, with its first 11 characters (``prefix``) to tell tokens
apart in lists. Functions flush; callers commit.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import click
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from werkzeug.datastructures import Headers

from .. import audit
from ..cli import account
from ..errors import InvalidInput
from ..extensions import db
from ..models import ApiToken, User, utcnow

TOKEN_PREFIX = "wc_"
PREFIX_CHARS = 11
NAME_CHARS = 100
USE_RESOLUTION = timedelta(minutes=1)  # last_used_at is written at most this often per token


class TokenNotFound(LookupError):
    """No such token for this user."""


def hash_token(token: str) -> str:
    """The SHA-256 of ``token`` as 64 hex characters (what is stored and looked up)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(user: User, name: str | None = None) -> tuple[ApiToken, str]:
    """A new token of ``user`` named ``name``; returns the row and the token itself, which is
    never stored and cannot be shown again. Raises :class:`InvalidInput` for a name over 100
    characters."""
    name = " ".join((name or "").split()) or "API token"
    if len(name) > NAME_CHARS:
        raise InvalidInput(f"The name is over {NAME_CHARS} characters.", field="name")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id, name=name, token_hash=hash_token(token), prefix=token[:PREFIX_CHARS]
    )
    db.session.add(row)
    db.session.flush()
    audit.record("token_created", user, token_id=row.id, name=name, prefix=row.prefix)
    return row, token


def presented(headers: Headers) -> str:
    """The token a request presents: ``Authorization: Bearer <token>`` (RFC 6750 §2.1), else
    Anthropic's ``x-api-key: <token>``; "" when it presents none."""
    scheme, _, value = headers.get("Authorization", "").strip().partition(" ")
    token = value.strip() if scheme.lower() == "bearer" else ""
    return token or headers.get("x-api-key", "").strip()


def user_for_token(token: str) -> tuple[User, bool] | None:
    """The user of a live (not revoked) bearer ``token``, or None; and whether the token's
    ``last_used_at`` was moved (it is, to a resolution of a minute; flush only).

    Runs on every bearer request: the token and its user come in one query."""
    found = live_token(token)
    return (found[0].user, found[1]) if found else None


def live_token(token: str) -> tuple[ApiToken, bool] | None:
    """The row of a live ``token`` (not revoked, its account not disabled), its user loaded, or
    None; and whether its ``last_used_at`` was moved (see :func:`user_for_token`)."""
    row = db.session.scalars(
        select(ApiToken)
        .options(joinedload(ApiToken.user))
        .where(ApiToken.token_hash == hash_token(token))
    ).first()
    if row is None or row.revoked_at is not None or not row.user.is_active:
        return None
    now = utcnow()
    touched = row.last_used_at is None or now - row.last_used_at >= USE_RESOLUTION
    if touched:
        row.last_used_at = now
        db.session.flush()
    return row, touched


def tokens_of(user: User) -> list[ApiToken]:
    """The user's tokens, live ones first, newest first."""
    return list(
        db.session.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == user.id)
            .order_by(ApiToken.revoked_at.is_not(None), ApiToken.id.desc())
        )
    )


def owned_token(user: User, token_id: int) -> ApiToken:
    """The user's token ``token_id``. Raises :class:`TokenNotFound`."""
    row = db.session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        raise TokenNotFound(token_id)
    return row


def revoke(row: ApiToken) -> ApiToken:
    """Revoke the token (at once, for every later request); revoking twice keeps the first
    time."""
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record("token_revoked", row.user_id, token_id=row.id, name=row.name)
    db.session.flush()
    return row


# --- flask tokens ----------------------------------------------------------------------------

cli = AppGroup("tokens", help="Manage API tokens.")


@cli.command("create")
@click.argument("email")
@click.option("--name", default="cli", show_default=True, help="A name to tell it apart.")
def create_command(email: str, name: str) -> None:
    """Create a token for an account and print it (once: only its hash is kept)."""
    try:
        _row, token = create_token(account(email), name)
    except InvalidInput as exc:
        raise click.ClickException(exc.message) from None
    db.session.commit()
    click.echo(token)


@cli.command("list")
@click.argument("email", required=False)
def list_command(email: str | None) -> None:
    """List tokens (of one account, or all): id, email, name, prefix, created, last used."""
    query = select(ApiToken).order_by(ApiToken.id)
    if email:
        query = query.where(ApiToken.user_id == account(email).id)
    for row in db.session.scalars(query):
        used = row.last_used_at.isoformat(timespec="seconds") if row.last_used_at else "never"
        state = f"revoked {row.revoked_at.isoformat(timespec='seconds')}" if row.revoked_at else ""
        click.echo(
            "\t".join(
                [
                    str(row.id),
                    row.user.email,
                    row.name,
                    row.prefix + "…",
                    row.created_at.isoformat(timespec="seconds"),
                    f"used {used}",
                    state,
                ]
            ).rstrip()
        )


@cli.command("revoke")
@click.argument("token_id", type=int)
def revoke_command(token_id: int) -> None:
    """Revoke a token by its id (see tokens list)."""
    row = db.session.get(ApiToken, token_id)
    if row is None:
        raise click.ClickException(f"No token with the id {token_id}.")
    revoke(row)
    db.session.commit()
    click.echo(f"revoked {row.id} ({row.name}, {row.user.email})")
