"""Titles written by the conversation's own model, in the background.

A new conversation is titled from its first message at once (:func:`services.title_from`). When
its model is a real one (not the offline demo) and ``TITLE_GENERATION`` is on, a thread then asks
that model for a short title — after the first reply has finished, so the reply never waits and
never competes with it — and replaces the provisional title unless the person renamed it
meanwhile.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid

from flask import Flask, current_app
from sqlalchemy import update

from .. import providers
from ..db import begin_write
from ..extensions import db
from ..models import Conversation
from ..providers.base import ChatMessage, Finish, ProviderError, TextDelta

log = logging.getLogger(__name__)

PROMPT = (
    "You name conversations. Reply with a title of at most six words for the conversation that "
    "starts with the user's message below: no quotes, no final full stop, nothing else."
)
MAX_CHARS = 60  # characters of a generated title
MAX_REPLY_CHARS = 300  # stop reading a rambling model after this many characters
PROMPT_CHARS = 4_000  # characters of the first message sent to the model
WAIT_FOR_REPLY_S = 600  # longest wait for the first reply to finish before titling anyway
THREADS = "webchat.title_threads"  # app.extensions key: the title threads still running
_threads_lock = threading.Lock()


def wanted(model_id: str) -> bool:
    """True when ``model_id`` names a configured, non-demo provider and titles are enabled.

    Providers that keep a session of their own (Claude Code) are left out: a title would cost a
    whole CLI session.
    """
    if not current_app.config.get("TITLE_GENERATION", True):
        return False
    try:
        provider, _ = providers.resolve(model_id)
    except ProviderError:
        return False
    return provider.name != "demo" and not getattr(provider, "uses_session", False)


def clean(text: str) -> str:
    """A title from a model's answer: its first non-empty line, without quotes, a leading
    "Title:", Markdown marks or a final full stop; at most :data:`MAX_CHARS` characters."""
    line = next((s for s in text.strip().splitlines() if s.strip()), "")
    line = re.sub(r"^\s*(#+\s*|title\s*:\s*)", "", line, flags=re.IGNORECASE)
    line = line.strip().strip("\"'“”‘’*_`").strip().rstrip(".").strip()
    line = " ".join(line.split())
    if len(line) > MAX_CHARS:
        line = line[:MAX_CHARS].rsplit(" ", 1)[0] or line[:MAX_CHARS]
    return line


def ask(model_id: str, first_message: str) -> str:
    """Ask ``model_id`` for a title of a conversation opening with ``first_message``; returns
    the cleaned title ('' when the model gave nothing usable). Raises :class:`ProviderError`."""
    provider, model = providers.resolve(model_id)
    messages = [
        ChatMessage(role="system", content=PROMPT),
        ChatMessage(role="user", content=first_message[:PROMPT_CHARS]),
    ]
    parts: list[str] = []
    stream = provider.stream(model, messages)
    try:
        for event in stream:
            if isinstance(event, TextDelta):
                parts.append(event.text)
                if sum(map(len, parts)) > MAX_REPLY_CHARS:
                    break
            elif isinstance(event, Finish):
                break
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    return clean("".join(parts))


def _generate(
    app: Flask,
    conversation_id: uuid.UUID,
    model_id: str,
    first_message: str,
    provisional: str,
    after: threading.Thread | None,
) -> None:
    if after is not None:
        after.join(WAIT_FOR_REPLY_S)
    with app.app_context():
        try:
            title = ask(model_id, first_message)
            if not title:
                return
            begin_write()
            db.session.execute(
                update(Conversation)
                .where(Conversation.id == conversation_id, Conversation.title == provisional)
                .values(title=title)
            )
            db.session.commit()
        except Exception:  # a title is a nicety: log, never disturb the conversation
            log.warning("generating a title for %s failed", conversation_id, exc_info=True)
            db.session.rollback()
        finally:
            db.session.remove()
            with _threads_lock:
                running = app.extensions.get(THREADS, [])
                if threading.current_thread() in running:
                    running.remove(threading.current_thread())


def launch(
    conversation: Conversation, first_message: str, after: threading.Thread | None = None
) -> threading.Thread | None:
    """Title ``conversation`` in a background thread once ``after`` (the first reply's run) has
    ended; returns the thread, or None when its model gets no generated title (see
    :func:`wanted`). Call after committing the conversation."""
    if not wanted(conversation.model):
        return None
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    thread = threading.Thread(
        target=_generate,
        args=(app, conversation.id, conversation.model, first_message, conversation.title, after),
        name=f"webchat-title-{conversation.id}",
        daemon=True,
    )
    with _threads_lock:  # the thread takes itself off the list as it ends
        app.extensions.setdefault(THREADS, []).append(thread)
    thread.start()
    return thread


def wait(app: Flask, timeout: float = 30) -> None:
    """Join the app's title threads that are still running (tests; a graceful shutdown)."""
    for thread in list(app.extensions.get(THREADS, [])):
        thread.join(timeout)
