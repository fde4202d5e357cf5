"""Operator commands: ``flask users``, and the registration of the features' groups
(``flask trash``, ``flask import``, ``flask tokens``, ``flask seed``)."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from .auth import services as accounts
from .errors import InvalidInput
from .extensions import db

users = AppGroup("users", help="Manage accounts.")


@users.command("create")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--admin/--no-admin", default=None, help="Make the account an admin.")
def create_user(email: str, password: str, admin: bool | None) -> None:
    """Create an account."""
    try:
        user = accounts.create_user(email, password, admin=admin)
    except InvalidInput as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from None
    db.session.commit()
    click.echo(f"created {user.email}" + (" (admin)" if user.is_admin else ""))


@users.command("list")
def list_users() -> None:
    """List accounts."""
    from sqlalchemy import select

    from .models import User

    for user in db.session.scalars(select(User).order_by(User.id)):
        click.echo(f"{user.id}\t{user.email}\t{'admin' if user.is_admin else ''}")


def init_app(app: Flask) -> None:
    """Register the command groups on ``app``."""
    from .api.tokens import cli as tokens
    from .conversations.cli import trash
    from .porting.cli import importer
    from .seed import seed_command

    app.cli.add_command(users)
    app.cli.add_command(trash)
    app.cli.add_command(importer)
    app.cli.add_command(tokens)
    app.cli.add_command(seed_command)
