"""The audit log: :func:`record` a security event from a service, read a user's or everyone's
events, prune old ones (``flask audit prune``).

Events (``AuditEvent.event``): ``signin``, ``signin_failed``, ``signout``, ``password_changed``,
``password_reset``, ``signed_out_everywhere``, ``token_created``, ``token_revoked``, ``export``,
``import``, ``account_deleted``, ``account_disabled``, ``account_enabled``, ``reset_link_created``,
``share_created``, ``share_revoked`` (a conversation's share link; detail: its conversation id).
Each keeps the client's IP and user agent when it happens in a request. Kept
``AUDIT_RETENTION_DAYS`` days (0: for ever). Functions flush; callers commit.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click
from flask import current_app, has_request_context, request
from flask.cli import AppGroup
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, joinedload

from .extensions import db
from .models import AuditEvent, User, utcnow

USER_AGENT_CHARS = 300


def _event(
    event: str, user: User | int | None, actor: User | None, detail: dict[str, Any]
) -> AuditEvent:
    row = AuditEvent(
        event=event,
        user_id=user.id if isinstance(user, User) else user,
        actor_id=actor.id if actor is not None else None,
        detail=detail,
        created_at=utcnow(),
    )
    if has_request_context():
        row.ip = request.remote_addr
        row.user_agent = (request.user_agent.string or "")[:USER_AGENT_CHARS] or None
    return row


def record(
    event: str, user: User | int | None = None, *, actor: User | None = None, **detail: Any
) -> AuditEvent:
    """Add an event about ``user`` (a row or an id), done by ``actor`` when that is someone
    else (an admin), with ``detail`` (JSON-able small facts). Flush only: it commits, or rolls
    back, with the change it records."""
    row = _event(event, user, actor, detail)
    db.session.add(row)
    db.session.flush()
    return row


def record_now(event: str, user: User | int | None = None, **detail: Any) -> None:
    """Record and commit an event at once in a session of its own, leaving the request's
    session (and the objects it holds) alone: for a view that changes nothing else, such as a
    download streamed after it returns."""
    row = _event(event, user, None, detail)
    with Session(db.engine) as session:
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        session.add(row)
        session.commit()


def events_of(user: User, limit: int = 50) -> list[AuditEvent]:
    """The newest ``limit`` events about ``user``, newest first."""
    return list(
        db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.user_id == user.id)
            .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
    )


def recent(limit: int = 200) -> list[AuditEvent]:
    """Everyone's newest ``limit`` events, newest first, with their users loaded."""
    return list(
        db.session.scalars(
            select(AuditEvent)
            .options(joinedload(AuditEvent.user))
            .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
    )


def prune(days: int | None = None) -> int:
    """Delete events older than ``days`` (default ``AUDIT_RETENTION_DAYS``; 0 keeps all);
    returns how many. Flush only."""
    days = current_app.config["AUDIT_RETENTION_DAYS"] if days is None else days
    if not days:
        return 0
    cutoff = utcnow() - timedelta(days=days)
    result = db.session.execute(delete(AuditEvent).where(AuditEvent.created_at < cutoff))
    return getattr(result, "rowcount", 0) or 0


cli = AppGroup("audit", help="The audit log.")


@cli.command("prune")
@click.option("--days", type=int, default=None, help="Keep this many days (default: setting).")
def prune_command(days: int | None) -> None:
    """Delete audit events older than AUDIT_RETENTION_DAYS days."""
    from .db import begin_write

    begin_write()
    count = prune(days)
    db.session.commit()
    click.echo(f"pruned {count} audit events")


@cli.command("list")
@click.option("--limit", type=int, default=50, show_default=True)
def list_command(limit: int) -> None:
    """Print the newest events: time, event, account, IP, detail."""
    for row in recent(limit):
        email = row.user.email if row.user else "-"
        when = row.created_at.isoformat(timespec="seconds")
        click.echo(f"{when}\t{row.event}\t{email}\t{row.ip or '-'}\t{row.detail or ''}")
