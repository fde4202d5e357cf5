"""The model's thinking streams live in the reply, then folds into a collapsed "Thinking" block
above the answer, and is still there after a reload.

gunicorn talks to the loopback fake upstream, which replays llama.cpp's recorded answer
(../shared/fixtures/llamacpp/…: ``reasoning_content`` deltas, then the answer) slowly enough to
watch.
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from ..conftest import fixture_path
from ..fakes.upstream import Reply, cassette, response_body
from .test_chat import sign_up
from .test_tools_live import server, upstream  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser
LLAMACPP = ("llamacpp", "llamacpp-gptoss-reasoning-tool-call-timings.yaml")


def test_thinking_streams_then_folds_above_the_answer(page: Page, server, upstream):  # noqa: F811
    body = response_body(cassette(fixture_path(*LLAMACPP))[1]["response"])
    events = [e + "\n\n" for e in body.split("\n\n") if e.strip()]
    chunks = [json.loads(e[len("data: ") :]) for e in events if e.startswith("data: {")]
    thought = "".join(
        c["choices"][0]["delta"].get("reasoning_content") or "" for c in chunks if c["choices"]
    )
    upstream.queue(Reply(chunks=[e.encode() for e in events], pause=0.2))
    sign_up(page, server)
    page.locator("select[name=model]").select_option("openai/gpt-4o-mini")
    composer = page.get_by_label("Message")
    composer.fill("What's the weather in Florence?")
    composer.press("Enter")

    reply = page.locator("article.msg.assistant").last
    expect(reply.locator(".thinking-live").first).to_be_visible(timeout=10_000)  # live, inline
    expect(reply).to_have_attribute("data-status", "complete", timeout=30_000)
    thinking = reply.locator("details.thinking")
    expect(thinking).to_have_count(1)
    expect(thinking).not_to_have_attribute("open", "")  # folded once the answer is there
    thinking.locator("summary").click()
    expect(thinking.locator(".thinking-body")).to_have_text(thought)
    expect(reply).to_contain_text("°C")

    page.reload()
    thinking = page.locator("article.msg.assistant").last.locator("details.thinking")
    thinking.locator("summary").click()
    expect(thinking.locator(".thinking-body")).to_have_text(thought)
