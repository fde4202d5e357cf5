"""What an import did: conversations created, grown or left alone, messages added, and every
line, node or conversation skipped with the reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ImportReport:
    """The outcome of one import (one file, or a folder of them when merged).

    ``skipped`` counts source items (lines, nodes) left out, by reason; ``notes`` counts things
    kept but worth saying (a parent missing from the file, …); ``failed`` lists whole
    conversations left out as ``(label, reason)`` — a corrupt one never stops the rest.
    ``conversation_ids`` are the webchat ids written to (created or grown).
    """

    format: str
    files: int = 0
    conversations_created: int = 0
    conversations_updated: int = 0
    conversations_unchanged: int = 0
    messages: int = 0
    already_imported: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)
    failed: list[tuple[str, str]] = field(default_factory=list)
    conversation_ids: list[str] = field(default_factory=list)

    def merge(self, other: ImportReport) -> ImportReport:
        """Add ``other``'s counts into this report; returns self."""
        self.files += other.files
        self.conversations_created += other.conversations_created
        self.conversations_updated += other.conversations_updated
        self.conversations_unchanged += other.conversations_unchanged
        self.messages += other.messages
        self.already_imported += other.already_imported
        self.skipped.update(other.skipped)
        self.notes.update(other.notes)
        self.failed.extend(other.failed)
        self.conversation_ids.extend(other.conversation_ids)
        return self

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: counts, ``skipped``/``notes`` as ``{reason: count}``, ``failed`` as
        ``[{"conversation", "reason"}]``."""
        return {
            "format": self.format,
            "files": self.files,
            "conversations_created": self.conversations_created,
            "conversations_updated": self.conversations_updated,
            "conversations_unchanged": self.conversations_unchanged,
            "messages": self.messages,
            "already_imported": self.already_imported,
            "skipped": dict(sorted(self.skipped.items())),
            "notes": dict(sorted(self.notes.items())),
            "failed": [{"conversation": c, "reason": r} for c, r in self.failed],
            "conversation_ids": list(self.conversation_ids),
        }

    def summary(self) -> list[str]:
        """The report as a few lines of text, for the CLI and the import page."""
        lines = [
            f"{self.format}: {self.files} file{'s' if self.files != 1 else ''} read; "
            f"{self.conversations_created} conversation(s) created, "
            f"{self.conversations_updated} grown, {self.conversations_unchanged} unchanged; "
            f"{self.messages} message(s) added"
            + (f", {self.already_imported} already imported" if self.already_imported else "")
        ]
        lines += [f"  skipped {n} × {reason}" for reason, n in sorted(self.skipped.items())]
        lines += [f"  note: {n} × {reason}" for reason, n in sorted(self.notes.items())]
        lines += [f"  failed: {label}: {reason}" for label, reason in self.failed]
        return lines
