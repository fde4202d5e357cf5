"""``flask import chatgpt|claude-code|webchat``: import conversations for a user."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import func, select

from ..extensions import db
from ..models import User
from . import chatgpt, claude_code, native
from .report import ImportReport

importer = AppGroup("import", help="Import conversations from ChatGPT, Claude Code or webchat.")
user_option = click.option(
    "--user", "email", required=True, help="Email of the account to import into."
)


def _user(email: str) -> User:
    user = db.session.scalars(select(User).where(func.lower(User.email) == email.lower())).first()
    if user is None:
        raise click.ClickException(f"no account {email!r} (create it with: flask users create)")
    return user


def _print(report: ImportReport) -> None:
    for line in report.summary():
        click.echo(line)


def _import_file(module, file, email: str) -> None:
    """Import ``file`` with ``module.import_file`` and print the report; a file the module
    cannot read at all is a ClickException (exit status 1)."""
    user = _user(email)
    try:
        _print(module.import_file(user, file))
    except ValueError as exc:  # chatgpt.Corrupt, native.Unreadable
        raise click.ClickException(f"{file.name}: {exc}") from None


@importer.command("chatgpt")
@click.argument("file", type=click.File("rb"))
@user_option
def import_chatgpt(file, email: str) -> None:
    """Import ChatGPT's conversations.json (or the export ZIP holding it)."""
    _import_file(chatgpt, file, email)


@importer.command("claude-code")
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
@user_option
def import_claude_code(path: Path | None, email: str) -> None:
    """Import Claude Code sessions: PATH (a .jsonl file or a folder), or ~/.claude/projects."""
    user = _user(email)
    paths = claude_code.discover(path)
    if not paths:
        where = path or claude_code.default_root()
        raise click.ClickException(f"no Claude Code sessions (*.jsonl) found in {where}")
    total = ImportReport(format=claude_code.SOURCE)
    with click.progressbar(
        claude_code.import_paths(user, paths),
        length=len(paths),
        label=f"Importing {len(paths)} session(s)",
        item_show_func=lambda item: item[0].name if item else None,
    ) as bar:
        for _path, report in bar:
            total.merge(report)
    _print(total)


@importer.command("webchat")
@click.argument("file", type=click.File("rb"))
@user_option
def import_webchat(file, email: str) -> None:
    """Import a webchat export: a conversation's JSON, the ZIP of all, or NDJSON."""
    _import_file(native, file, email)
