"""Per-conversation generation parameters: set in the conversation's settings, stored in
``metadata.params``, sent to the provider (OpenAI-compatible and Anthropic, through the real
SDKs to the loopback upstream replaying recorded streams)."""

from __future__ import annotations

import uuid

from webchat.extensions import db
from webchat.models import Conversation

from . import test_providers_compat as compat
from .conftest import fixture_path, post, wait_for_runs
from .fakes.upstream import cassette_replies
from .test_providers import chat

app = compat.app  # the providers talk to the loopback upstream
upstream = compat.upstream
BRIEF = ("anthropic", "test_thinking_prompt.yaml")


def settings(client, cid: str, **fields):
    form = {"model": fields.pop("model", compat.MODEL), "system_prompt": "", **fields}
    return post(client, f"/c/{cid}/settings", form, htmx=True)


def test_parameters_are_checked_stored_and_sent(app, user_client, upstream):
    upstream.queue(compat.text_reply())
    cid, _ = chat(app, user_client, "Hello", compat.MODEL)
    bad = settings(user_client, cid, temperature="3", max_tokens="", reasoning_effort="")
    assert bad.status_code == 400 and "Temperature is a number from 0 to 2" in bad.get_data(
        as_text=True
    )
    assert settings(user_client, cid, max_tokens="0").status_code == 400
    assert settings(user_client, cid, reasoning_effort="extreme").status_code == 400
    saved = settings(user_client, cid, temperature="0.3", max_tokens="256", reasoning_effort="high")
    assert saved.status_code == 200 and 'value="0.3"' in saved.get_data(as_text=True)
    with app.app_context():
        conversation = db.session.get(Conversation, uuid.UUID(cid))
        params = conversation.meta["params"]
    assert params == {"temperature": 0.3, "max_tokens": 256, "reasoning_effort": "high"}
    # the OpenAI-compatible server gets them (max_tokens: a server at a base URL)
    upstream.queue(compat.text_reply())
    assert post(user_client, f"/c/{cid}/messages", {"content": "Again"}).status_code == 303
    wait_for_runs(app)
    sent = upstream.posts()[-1]["json"]
    assert (sent["temperature"], sent["max_tokens"], sent["reasoning_effort"]) == (0.3, 256, "high")
    # Anthropic: the effort is a thinking budget, max_tokens raised above it, no temperature
    settings(
        user_client,
        cid,
        model="anthropic/claude-haiku-4-5",
        temperature="0.3",
        max_tokens="256",
        reasoning_effort="low",
    )
    upstream.queue(cassette_replies(fixture_path(*BRIEF))[0])
    assert post(user_client, f"/c/{cid}/messages", {"content": "Names?"}).status_code == 303
    wait_for_runs(app)
    sent = upstream.posts()[-1]["json"]
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert sent["max_tokens"] == 1024 + 1024 and "temperature" not in sent
    # blank fields clear them; the request carries none
    claude = "anthropic/claude-haiku-4-5"
    settings(user_client, cid, model=claude, temperature="", max_tokens="", reasoning_effort="")
    with app.app_context():
        assert "params" not in db.session.get(Conversation, uuid.UUID(cid)).meta
    upstream.queue(cassette_replies(fixture_path(*BRIEF))[0])
    post(user_client, f"/c/{cid}/messages", {"content": "More?"})
    wait_for_runs(app)
    sent = upstream.posts()[-1]["json"]
    assert "thinking" not in sent and sent["max_tokens"] == 8192
