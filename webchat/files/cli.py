"""``flask files gc``: delete the files no message refers to, and their bytes."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from . import services

files_cli = AppGroup("files", help="Manage files attached to messages.")


@files_cli.command("gc")
@click.option(
    "--unattached-hours",
    type=float,
    default=None,
    help="Age after which an upload never sent is deleted (default FILES_UNATTACHED_HOURS).",
)
def gc_command(unattached_hours: float | None) -> None:
    """Delete files no message refers to any more, and blobs no file refers to."""
    counts = services.collect_garbage(unattached_hours)
    click.echo(f"deleted {counts['files']} files and {counts['blobs']} stored blobs")
