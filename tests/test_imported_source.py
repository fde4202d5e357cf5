"""Imported conversations continue sensibly: the badge names the source (ChatGPT, Claude Code, an
API gateway token) and the model used there; replies use the user's default model, or the Claude
Code provider for a Claude Code session when it is configured; the settings popover changes it."""

from __future__ import annotations

import re

from sqlalchemy import select

from webchat.conversations import services
from webchat.extensions import db
from webchat.models import Conversation, User
from webchat.templating import Source, conversation_source

from .conftest import post, sign_up
from .test_import_chatgpt import import_data, load
from .test_import_claude_code import import_file
from .test_porting import CHATGPT

OPENAI = {
    "OPENAI_API_KEY": "sk-test",
    "OPENAI_MODELS": ["gpt-4o-mini"],
    "OPENAI_LIST_MODELS": False,
    "CLAUDE_CODE_COMMAND": None,
}


def test_the_source_of_a_conversation():
    assert conversation_source({}) is None and conversation_source(None) is None
    assert conversation_source({"source": "chatgpt", "source_model": "gpt-4o"}) == Source(
        "ChatGPT", "gpt-4o"
    )
    assert conversation_source({"source": "claude-code"}) == Source("Claude Code", None)
    gateway = {"source": "gateway", "source_name": "ci-bot", "source_model": "gpt-4.1"}
    assert conversation_source(gateway) == Source("via ci-bot", "gpt-4.1")
    assert conversation_source({"source": "elsewhere"}) == Source("elsewhere", None)


def the_user(app) -> User:
    return db.session.scalars(select(User)).one()


def test_a_chatgpt_import_continues_with_the_users_default_model(make_app):
    app = make_app(**OPENAI)
    client = app.test_client()
    sign_up(client)
    with app.app_context():
        user = the_user(app)
        assert services.default_model(user) == "demo/echo"  # nothing started yet: the server's
        services.create_conversation(user, model="openai/gpt-4o-mini")
        db.session.commit()
        assert services.default_model(user) == "openai/gpt-4o-mini"
        import_data(user, load(CHATGPT))
        imported = db.session.scalars(
            select(Conversation).where(Conversation.model != "openai/gpt-4o-mini")
        ).all()
        assert imported == []  # every imported conversation continues with that model
        conversation = next(
            c
            for c in db.session.scalars(select(Conversation).order_by(Conversation.created_at))
            if c.meta.get("source_model")
        )
        assert conversation.meta["source"] == "chatgpt"
        source_model = conversation.meta["source_model"]
        # an imported conversation does not become the default
        assert services.default_model(user) == "openai/gpt-4o-mini"
    html = client.get(f"/c/{conversation.id}").get_data(as_text=True)
    badge = re.search(r'<summary class="model-badge[^"]*"[^>]*>(.*?)</summary>', html, re.S)
    assert badge, "no model badge"
    text = " ".join(re.sub(r"<[^>]+>", " ", badge.group(1)).split())
    assert text.startswith(f"ChatGPT · {source_model} → openai/gpt-4o-mini"), text
    assert "demo" not in text
    assert f"where it used <code>{source_model}</code>" in html
    # the settings popover changes the model it continues with
    saved = post(
        client, f"/c/{conversation.id}/settings", {"model": "demo/echo", "system_prompt": ""}
    )
    assert saved.status_code in (200, 302, 303)
    with app.app_context():
        assert db.session.get(Conversation, conversation.id).model == "demo/echo"


def test_a_claude_code_session_continues_with_claude_code_when_configured(make_app, tmp_path):
    claude = tmp_path / "claude"
    claude.write_text("#!/bin/sh\nexit 0\n")
    claude.chmod(0o755)
    app = make_app(CLAUDE_CODE_COMMAND=str(claude))
    client = app.test_client()
    sign_up(client)
    with app.app_context():
        import_file(the_user(app), "hello-world-script.jsonl")
        conversation = db.session.scalars(select(Conversation)).one()
        assert conversation.model == "claude-code/default"
        assert conversation.meta["source_model"].startswith("claude-")
    html = client.get(f"/c/{conversation.id}").get_data(as_text=True)
    assert f'Claude Code<span class="source-model"> · {conversation.meta["source_model"]}' in html


def test_without_the_provider_a_claude_code_session_uses_the_default(make_app):
    app = make_app(CLAUDE_CODE_COMMAND=None)
    with app.app_context():
        from .test_porting import make_user

        user = make_user()
        import_file(user, "hello-world-script.jsonl")
        assert db.session.scalars(select(Conversation.model)).one() == "demo/echo"
