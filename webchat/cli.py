"""Operator commands: ``flask users`` (create, list with storage, disable, enable,
reset-password), and the registration of the features' groups (``flask trash``, ``flask import``,
``flask tokens``, ``flask files``, ``flask seed``, ``flask audit``, ``flask backup``,
``flask maintenance``)."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from .auth import services as accounts
from .errors import InvalidInput
from .extensions import db
from .models import User

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
    """List accounts: id, email, admin, state, conversations, messages, bytes stored."""
    from .admin.services import human_bytes, storage

    for row in storage():
        user = row.user
        click.echo(
            "\t".join(
                [
                    str(user.id),
                    user.email,
                    "admin" if user.is_admin else "-",
                    "disabled" if user.disabled_at else "active",
                    f"{row.conversations} conversations",
                    f"{row.messages} messages",
                    human_bytes(row.bytes),
                ]
            )
        )


def account(email: str) -> User:
    """The account with ``email``; a CLI error (exit 1) when there is none."""
    user = accounts.find_user(email)
    if user is None:
        raise click.ClickException(f"No account with the email {email}.")
    return user


@users.command("disable")
@click.argument("email")
def disable_user(email: str) -> None:
    """Disable an account: its sessions and API tokens stop working at once."""
    try:
        accounts.set_disabled(account(email), True)
    except InvalidInput as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from None
    db.session.commit()
    click.echo(f"disabled {email}")


@users.command("enable")
@click.argument("email")
def enable_user(email: str) -> None:
    """Enable a disabled account again."""
    accounts.set_disabled(account(email), False)
    db.session.commit()
    click.echo(f"enabled {email}")


@users.command("reset-password")
@click.argument("email")
@click.option(
    "--base-url",
    envvar="WEBCHAT_BASE_URL",
    default="http://127.0.0.1:5000",
    show_default=True,
    help="Where people open webchat (WEBCHAT_BASE_URL).",
)
def reset_password(email: str, base_url: str) -> None:
    """Print a one-time link that sets a new password (valid a day, and until used)."""
    from flask import current_app, url_for

    token = accounts.reset_token(account(email))
    db.session.commit()
    with current_app.test_request_context(base_url=base_url.rstrip("/")):
        click.echo(url_for("auth.reset_password", token=token, _external=True))


def init_app(app: Flask) -> None:
    """Register the command groups on ``app``."""
    from .api.tokens import cli as tokens
    from .audit import cli as audit
    from .backup import backup_cli, maintenance_command
    from .conversations.cli import trash
    from .files.cli import files_cli
    from .mcp.cli import mcp
    from .porting.cli import importer
    from .seed import seed_command

    app.cli.add_command(users)
    app.cli.add_command(trash)
    app.cli.add_command(files_cli)
    app.cli.add_command(importer)
    app.cli.add_command(tokens)
    app.cli.add_command(seed_command)
    app.cli.add_command(audit)
    app.cli.add_command(backup_cli)
    app.cli.add_command(maintenance_command)
    app.cli.add_command(mcp)
