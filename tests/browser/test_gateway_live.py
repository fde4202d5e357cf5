"""A reply made through the recording gateway, watched live in Chromium: a person creates a token
in Settings, a script streams through ``/v1/chat/completions`` with the openai SDK, the page shows
the conversation (marked with the token's name) streaming, and Stop there ends the script's
stream cleanly with what was stored."""

from __future__ import annotations

import threading

import openai
import pytest
from playwright.sync_api import Page, expect

from .test_chat import sign_up, stored_reply

pytestmark = pytest.mark.browser


def test_a_gateway_reply_streams_live_in_the_page_and_stop_ends_the_client(page: Page, server):
    sign_up(page, server)
    page.goto(server.url + "/settings/")
    page.get_by_label("New token's name").fill("notebook")
    page.get_by_role("button", name="Create token").click()
    token = page.get_by_label("New API token").input_value()
    assert token.startswith("wc_")

    client = openai.OpenAI(base_url=server.url + "/v1", api_key=token, max_retries=0)
    received: dict = {"text": "", "finish": None}

    def script() -> None:
        stream = client.chat.completions.create(
            model="demo/echo",
            messages=[{"role": "user", "content": "/long 600"}],
            stream=True,
        )
        for chunk in stream:
            choice = chunk.choices[0]
            received["text"] += choice.delta.content or ""
            received["finish"] = choice.finish_reason or received["finish"]

    caller = threading.Thread(target=script)
    caller.start()

    link = page.locator("a.conversation-link", has_text="/long 600")
    for _ in range(50):  # the sidebar shows it once the script's request is stored
        page.goto(server.url + "/")
        if link.count():
            break
        page.wait_for_timeout(100)
    expect(link.locator(".source-badge")).to_have_text("notebook")
    link.click()
    reply = page.locator("article.msg.assistant").last
    expect(reply).to_have_attribute("data-status", "streaming")
    text = reply.locator(".stream-text")
    expect(text).not_to_be_empty(timeout=5000)
    page.get_by_role("button", name="Stop").click()
    expect(reply).to_contain_text("Stopped.", timeout=5000)

    caller.join(10)
    assert not caller.is_alive()
    assert received["finish"] == "stop"
    status, content = stored_reply(server)
    assert status == "cancelled" and content == received["text"] and content
