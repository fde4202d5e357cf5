"""The approval card of an MCP tool call, in Chromium: it shows live as the run stops to wait,
is still there after a reload, and Allow makes the tool block and the answer stream in.

gunicorn (gevent worker) runs the real mcp-server-time over stdio from ``instance/mcp.json``;
the demo model asks for it with ``/mcp``."""

from __future__ import annotations

import json
import sys

import pytest
from playwright.sync_api import Page, expect

from .conftest import Server
from .test_chat import sign_up

pytestmark = pytest.mark.browser

ASK = '/mcp time__get_current_time {"timezone": "Asia/Tokyo"}'


@pytest.fixture
def server(tmp_path):
    command = {"command": sys.executable, "args": ["-m", "mcp_server_time"]}
    (tmp_path / "mcp.json").write_text(json.dumps({"mcpServers": {"time": command}}))
    srv = Server(tmp_path, WEBCHAT_TITLE_GENERATION="false").start()
    yield srv
    srv.stop()


def test_approval_card_shows_live_and_allow_streams_the_answer(page: Page, server):
    sign_up(page, server)
    composer = page.get_by_label("Message")
    composer.fill(ASK)
    composer.press("Enter")

    reply = page.locator("article.msg.assistant").last
    card = reply.locator("section.approval")
    expect(card).to_contain_text("Allow this tool call?", timeout=20_000)
    expect(card).to_contain_text("get_current_time")
    expect(card.locator("pre")).to_contain_text('"timezone": "Asia/Tokyo"')
    expect(reply).to_have_attribute("data-status", "awaiting_approval")

    page.reload()  # the wait is stored: the card is still there
    reply = page.locator("article.msg.assistant").last
    card = reply.locator("section.approval")
    expect(card).to_contain_text("Allow this tool call?")
    card.get_by_role("button", name="Allow", exact=True).click()

    reply = page.locator("article.msg.assistant").last
    expect(reply.locator("section.approval")).to_have_count(0)
    expect(reply).to_contain_text("The tool time__get_current_time answered", timeout=20_000)
    expect(reply).to_have_attribute("data-status", "complete", timeout=20_000)
    step = reply.locator("details.tool-step")  # the call and its result, one block
    expect(step).to_contain_text("time__get_current_time")
    expect(step.locator(".tool-mark")).to_have_attribute("aria-label", "ok")
    step.locator("summary").click()
    expect(step).to_contain_text("+09:00")
