"""The text/event-stream writer: follow a run's stored messages and send them as SSE events.

Format: the "Server-sent events" section of the HTML Living Standard. Each event has an ``event:``
name, an ``id:`` and one ``data:`` line per line of its payload. Event ids are cursors
``<message-uuid>:<offset>`` (characters of that message's content already sent) or
``<message-uuid>:end`` (that message sent whole, tool block included), so a reconnect with
``Last-Event-ID`` resumes exactly. The model's thinking streams as ``reasoning`` events while
the message has no content yet, with cursors ``<message-uuid>:r<offset>`` (characters of its
``reasoning`` sent, none of its content); thinking that comes after the content has begun is not
streamed (the final reply, sent by ``done``, shows it). Streams start with a comment (so
proxies flush), send a ``: ping`` comment after ``SSE_HEARTBEAT_MS`` of silence, and end after
``done``.

The stream sends only what is committed: what it reads from the database, or the committed text a
notification carries when that text continues exactly from the client's cursor (see
:mod:`.notify`); anything else (a gap, a payload it missed) sends it back to the database.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, cast

from flask import Flask, Response, current_app, request, stream_with_context
from sqlalchemy import Table, and_, bindparam, case, func, select
from sqlalchemy.engine import Connection

from ..extensions import db
from ..models import Message, Role, Run, Status
from ..ops import metrics

END = "end"


def format_event(data: str, event: str | None = None, id: str | None = None) -> str:
    """One SSE event as text: ``event:``, ``id:``, then a ``data:`` line per line of ``data``.

    Raises ``ValueError`` if ``event`` or ``id`` contain a line break (they would split the event).
    """
    lines = []
    for name, value in (("event", event), ("id", id)):
        if value is not None:
            if "\n" in value or "\r" in value:
                raise ValueError(f"SSE {name} must be one line")
            lines.append(f"{name}: {value}")
    for line in data.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        lines.append(f"data: {line}")
    return "\n".join(lines) + "\n\n"


def comment(text: str = "") -> str:
    """An SSE comment line, ignored by clients; keeps proxies and idle connections alive."""
    return f": {text}\n\n"


@dataclass
class StoredMessage:
    """A run's message as the stream reads it; ``text`` is its content from the cursor on."""

    id: uuid.UUID
    role: str
    status: str
    text: str
    start: int  # character offset of ``text`` within the content
    tool_name: str | None
    tool_call: Any
    tool_result: Any
    error: str | None
    reasoning: str = ""  # its thinking from ``reasoning_start`` on
    reasoning_start: int = 0

    @property
    def final(self) -> bool:
        """Sent whole: ended, or a tool call stored as awaiting approval."""
        return self.status in Status.FINAL or self.status == Status.AWAITING


@dataclass
class Cursor:
    """How far a client has got: a message and a character offset, or ``None`` = that message
    is sent whole; ``reasoning`` = characters of its thinking sent while its content offset is
    still 0 (None once the content has begun)."""

    message_id: uuid.UUID
    offset: int | None
    reasoning: int | None = None

    def __str__(self) -> str:
        if self.offset == 0 and self.reasoning:
            return f"{self.message_id}:r{self.reasoning}"
        return f"{self.message_id}:{END if self.offset is None else self.offset}"

    @classmethod
    def parse(cls, value: str | None) -> Cursor | None:
        """Parse a ``Last-Event-ID``; None for a missing or malformed one (start over)."""
        if not value:
            return None
        mid, _, off = value.strip().rpartition(":")
        try:
            if off.startswith("r"):
                return cls(uuid.UUID(mid), 0, int(off[1:]))
            return cls(uuid.UUID(mid), None if off == END else int(off))
        except ValueError:
            return None


class StreamFormat(Protocol):
    """How a stream renders its events: HTML fragments for htmx, JSON for programs."""

    def snapshot(self, run_id: uuid.UUID) -> str | None:
        """Payload of a first ``snapshot`` event with everything stored, or None to replay."""

    def delta(self, message: StoredMessage, text: str) -> str:
        """Payload of a ``delta`` event carrying ``text`` of ``message``."""

    def reasoning(self, message: StoredMessage, text: str) -> str:
        """Payload of a ``reasoning`` event carrying ``text`` of the message's thinking."""

    def tool_call(self, message: StoredMessage) -> str:
        """Payload of a ``tool_call`` event."""

    def tool_result(self, message: StoredMessage) -> str:
        """Payload of a ``tool_result`` event."""

    def error(self, run_id: uuid.UUID, text: str) -> str:
        """Payload of an ``error`` event with readable ``text``."""

    def done(self, run_id: uuid.UUID) -> str:
        """Payload of the closing ``done`` event."""

    # Optional: ``write_event(data, event, id) -> str`` writes each event itself (see _event).


_runs = cast(Table, Run.__table__)
_messages = cast(Table, Message.__table__)
# One statement per read, built once: the run's status and error, and each message of the run
# not yet sent whole, its content from the cursor's offset on (``substr`` is 1-based). Sent
# messages are left out in the join, so a run whose messages are all sent still gives one row.
_READ = (
    select(
        _runs.c.status,
        _runs.c.error,
        _messages.c.id,
        _messages.c.role,
        _messages.c.status,
        func.substr(
            _messages.c.content,
            case((_messages.c.id == bindparam("cursor_id"), bindparam("start")), else_=1),
        ),
        _messages.c.tool_name,
        _messages.c.tool_call,
        _messages.c.tool_result,
        _messages.c.error,
        func.substr(
            _messages.c.reasoning,
            case((_messages.c.id == bindparam("cursor_id"), bindparam("reasoning_start")), else_=1),
        ),
    )
    .select_from(
        _runs.outerjoin(
            _messages,
            and_(
                _messages.c.run_id == _runs.c.id,
                _messages.c.id.not_in(bindparam("sent", expanding=True)),
            ),
        )
    )
    .where(_runs.c.id == bindparam("run_id"))
    .order_by(_messages.c.created_at, _messages.c.id)
)


@dataclass
class RunState:
    """One read of a run: its status and error, and its messages not yet sent whole."""

    status: str
    error: str | None
    messages: list[StoredMessage]

    @property
    def final(self) -> bool:
        """The stream ends: the run ended, or it waits for a person's approval (a decision
        starts it again; the page then follows it anew)."""
        return self.status in Status.FINAL or self.status == Status.AWAITING


_NOT_READ = 2**31 - 1  # a substr start past any text: the column is not read


def _read(
    connection: Connection, run_id: uuid.UUID, cursor: Cursor | None, sent: set[uuid.UUID]
) -> RunState | None:
    """Read the run from ``cursor`` on, leaving out the messages in ``sent``; None when the run
    no longer exists (its conversation was deleted)."""
    at = cursor if cursor is not None and (cursor.offset or cursor.reasoning) else None
    # Thinking is streamed only before the content: past that, none of it is read.
    reasoning_start = (at.reasoning or 0) + 1 if at and not at.offset else _NOT_READ
    rows = connection.execute(
        _READ,
        {
            "run_id": run_id,
            "cursor_id": at.message_id if at else None,
            "start": at.offset + 1 if at and at.offset else 1,
            "reasoning_start": reasoning_start,
            "sent": list(sent),
        },
    ).all()
    if not rows:
        return None
    messages = [
        StoredMessage(
            row[2],
            row[3],
            row[4],
            row[5] or "",
            at.offset if at and at.offset and row[2] == at.message_id else 0,
            row[6],
            row[7],
            row[8],
            row[9],
            row[10] or "",
            reasoning_start - 1 if at and row[2] == at.message_id else 0,
        )
        for row in rows
        if row[2] is not None
    ]
    return RunState(rows[0][0], rows[0][1], messages)


def _event(fmt: StreamFormat, data: str, event: str, id: str | None = None) -> str:
    """One event of ``fmt``'s stream: written by its own ``write_event(data, event, id)`` when it
    has one (the gateway's wire formats, whose payloads are whole events of their API already),
    else by :func:`format_event`."""
    write = getattr(fmt, "write_event", None)
    return write(data, event, id) if write is not None else format_event(data, event, id)


def follow(
    app: Flask,
    run_id: uuid.UUID,
    fmt: StreamFormat,
    last_event_id: str | None = None,
) -> Iterator[str]:
    """Yield the SSE text of run ``run_id`` from ``last_event_id`` (or the start) to its end.

    Each wake either sends the appends its notifications carry (when they continue exactly from
    the client's cursor) or reads the database once, on a connection taken from the pool for
    that read only, so no session or connection is held between reads; the opening and the
    ending (which render with the format's templates) run in an app context of their own. Wrap it in
    ``stream_with_context`` when the format renders templates that need the request
    (``url_for``, ``csrf_token``). Ends after the ``done`` event (preceded by ``error`` for a
    failed run), or at once if the run is deleted.
    """
    with metrics.open_stream():
        yield from _follow(app, run_id, fmt, last_event_id)


def _follow(
    app: Flask, run_id: uuid.UUID, fmt: StreamFormat, last_event_id: str | None
) -> Iterator[str]:
    poll_s = app.config["STREAM_POLL_MS"] / 1000
    ping_s = app.config["SSE_HEARTBEAT_MS"] / 1000
    cursor = Cursor.parse(last_event_id)
    sent: set[uuid.UUID] = set()
    opening = comment("stream of run " + str(run_id))
    # The browser's reconnection delay; a wire format of its own (the gateway's) has no
    # EventSource, and the SDKs' readers take a lone retry: field for an empty event.
    yield opening if hasattr(fmt, "write_event") else "retry: 1000\n" + opening
    last_sent = time.monotonic()
    with app.extensions["webchat.notifier"].subscribe(str(run_id)) as sub:
        seen = sub.version
        with app.app_context():
            engine = db.engine
            out, cursor = _opening(fmt, run_id, cursor, sent)
            state = _read(db.session.connection(), run_id, cursor, sent)
        while state is not None:
            for message in state.messages:
                events, cursor = _events_for(fmt, message, cursor)
                out.extend(events)
                if cursor is not None and cursor.offset is not None:
                    break  # wait for more of this message
                sent.add(message.id)
                cursor = None
            if state.final and (cursor is None or all(m.final for m in state.messages)):
                with app.app_context():
                    if state.error and state.status == Status.ERROR:
                        out.append(_event(fmt, fmt.error(run_id, state.error), "error"))
                    out.append(_event(fmt, fmt.done(run_id), "done", _done_id(run_id)))
                yield "".join(out)
                return
            if out:
                yield "".join(out)
                last_sent = time.monotonic()
            # Everything read is sent; what is stored after that read has a newer version.
            if not sub.wait(seen, poll_s) and time.monotonic() - last_sent >= ping_s:
                yield comment("ping")
                last_sent = time.monotonic()
            seen, payloads = sub.since(seen)
            out, cursor = _from_payloads(fmt, payloads, cursor)
            if out:
                state = RunState(state.status, state.error, [])  # nothing else is new
                continue
            with engine.connect() as connection:
                state = _read(connection, run_id, cursor, sent)


def _from_payloads(
    fmt: StreamFormat, payloads: list | None, cursor: Cursor | None
) -> tuple[list[str], Cursor | None]:
    """``delta`` events for the notified appends that continue exactly from ``cursor`` (see
    :mod:`.notify`), and the cursor after them. Returns no events (read the database) unless
    every payload fits: a gap, another message or a notification without payload all mean the
    database has something these payloads do not say."""
    if not payloads or cursor is None or cursor.offset is None:
        return [], cursor
    events = []
    offset = cursor.offset
    for message_id, start, text in payloads:
        if message_id != str(cursor.message_id) or start != offset:
            return [], cursor
        message = StoredMessage(
            cursor.message_id, Role.ASSISTANT, Status.STREAMING, text, start, None, None, None, None
        )
        offset = start + len(text)
        events.append(_event(fmt, fmt.delta(message, text), "delta", f"{message_id}:{offset}"))
    return events, Cursor(cursor.message_id, offset)


def _opening(
    fmt: StreamFormat, run_id: uuid.UUID, cursor: Cursor | None, sent: set[uuid.UUID]
) -> tuple[list[str], Cursor | None]:
    """The first events of a stream and the cursor after them: a ``snapshot`` of everything
    stored when the format has one (its messages sent whole go into ``sent``), else nothing,
    with the messages before a ``Last-Event-ID`` cursor put in ``sent``."""
    _one_snapshot()
    snap = fmt.snapshot(run_id)
    if snap is None:
        if cursor is not None:
            sent.update(_sent_before(run_id, cursor))
        return [], cursor
    state = _read(db.session.connection(), run_id, None, sent)
    messages = state.messages if state else []
    cursor = _cursor_at_end(messages)
    sent.update(m.id for m in messages if m.final)
    events = [_event(fmt, snap, "snapshot", str(cursor) if cursor else None)]
    return events, None if cursor is None or cursor.offset is None else cursor


def _one_snapshot() -> None:
    """Make this session's transaction read one snapshot of the database, so the ``snapshot``
    event and the cursor computed after it describe the same text (a reply written between the
    two reads would otherwise lose those characters). A SQLite read transaction always reads one
    snapshot; PostgreSQL's default READ COMMITTED does not, so ask for REPEATABLE READ."""
    if db.engine.dialect.name == "postgresql":
        db.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def _events_for(
    fmt: StreamFormat, message: StoredMessage, cursor: Cursor | None
) -> tuple[list[str], Cursor | None]:
    """Events for what is new in ``message``; returns them and the cursor after them
    (offset None once the message is sent whole)."""
    out = []
    mine = cursor is not None and cursor.message_id == message.id
    offset = (cursor.offset if cursor and mine else 0) or 0
    thought = cursor.reasoning if cursor and mine and not offset else None
    if message.role != Role.TOOL and message.reasoning and not offset and not message.start:
        thought = message.reasoning_start + len(message.reasoning)
        out.append(
            _event(
                fmt,
                fmt.reasoning(message, message.reasoning),
                "reasoning",
                f"{message.id}:r{thought}",
            )
        )
    if message.role != Role.TOOL and message.text:
        offset = message.start + len(message.text)
        out.append(_event(fmt, fmt.delta(message, message.text), "delta", f"{message.id}:{offset}"))
    if not message.final:
        return out, Cursor(message.id, offset, thought if not offset else None)
    end_id = f"{message.id}:{END}"
    if message.role == Role.TOOL and message.status == Status.AWAITING:
        pass  # the run waits: its `done` event shows the call's approval card
    elif message.role == Role.TOOL:
        out.append(_event(fmt, fmt.tool_result(message), "tool_result", end_id))
    elif message.tool_call:
        out.append(_event(fmt, fmt.tool_call(message), "tool_call", end_id))
    return out, Cursor(message.id, None)


def _cursor_at_end(messages: list[StoredMessage]) -> Cursor | None:
    if not messages:
        return None
    last = messages[-1]
    if last.final:
        return Cursor(last.id, None)
    return Cursor(last.id, len(last.text), None if last.text else len(last.reasoning))


def _sent_before(run_id: uuid.UUID, cursor: Cursor) -> list[uuid.UUID]:
    """Ids of the run's messages before the cursor's message (and it too, when sent whole)."""
    ids = list(
        db.session.scalars(
            select(Message.id)
            .where(Message.run_id == run_id)
            .order_by(Message.created_at, Message.id)
        )
    )
    if cursor.message_id not in ids:
        return []
    index = ids.index(cursor.message_id)
    return ids[: index + (1 if cursor.offset is None else 0)]


def _done_id(run_id: uuid.UUID) -> str:
    last = db.session.scalars(
        select(Message.id)
        .where(Message.run_id == run_id)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(1)
    ).first()
    return f"{last}:{END}"


def stream_response(run_id: uuid.UUID, fmt: StreamFormat) -> Response:
    """The ``text/event-stream`` response of a view following run ``run_id`` in ``fmt`` from the
    request's ``Last-Event-ID``. The request's database session is closed first, so the open
    stream holds no connection; proxies are asked not to buffer it."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    last_event_id = request.headers.get("Last-Event-ID")
    db.session.remove()
    return app.response_class(
        stream_with_context(follow(app, run_id, fmt, last_event_id)),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
