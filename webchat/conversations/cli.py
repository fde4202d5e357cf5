"""``flask trash purge``: remove conversations whose time in Trash is up, then the files only
they used."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..extensions import db
from ..files import services as files
from . import services

trash = AppGroup("trash", help="Manage conversations in Trash.")


@trash.command("purge")
def purge_command() -> None:
    """Delete for good what has been in Trash longer than TRASH_RETENTION_DAYS."""
    count = services.purge_expired()
    db.session.commit()
    click.echo(f"purged {count} conversation{'s' if count != 1 else ''} from Trash")
    freed = files.collect_garbage()  # the files only those conversations used (issue 14)
    click.echo(f"deleted {freed['files']} files nobody refers to")
