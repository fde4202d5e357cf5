"""A person signs up, chats with the demo model, reloads mid-reply and after a restart."""

from __future__ import annotations

import re
import sqlite3

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def stored_reply(server) -> tuple[str, str]:
    """(status, content) of the newest assistant message, read straight from the database."""
    with sqlite3.connect(server.folder / "webchat.sqlite3") as conn:
        return conn.execute(
            "SELECT status, content FROM messages WHERE role = 'assistant' "
            "ORDER BY created_at DESC LIMIT 1"
        ).fetchone()


def sign_up(page: Page, server) -> None:
    page.goto(server.url + "/signup")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password", exact=True).fill("correct horse")
    page.get_by_label("Password again").fill("correct horse")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="How can I help?")).to_be_visible()


def send(page: Page, text: str) -> None:
    """Type ``text`` in the composer and press Enter."""
    composer = page.get_by_label("Message")
    composer.fill(text)
    composer.press("Enter")


def test_chat_streams_survives_reload_and_restart(page: Page, server):
    sign_up(page, server)
    send(page, "Tell me about persistence")

    reply = page.locator("article.msg.assistant").last
    expect(page.locator("article.msg.user")).to_contain_text("Tell me about persistence")
    expect(reply).to_have_attribute("data-status", "streaming")
    expect(page.get_by_label("Message")).to_be_disabled()
    # Tokens appear while the reply streams.
    expect(reply).to_contain_text("offline demo model", timeout=5000)
    assert stored_reply(server)[0] in ("pending", "streaming")

    # Reload mid-reply: the stored text shows, and the stream continues from there.
    page.reload()
    reply = page.locator("article.msg.assistant").last
    assert stored_reply(server)[0] == "streaming"
    # While it streams, what the page shows is always a prefix of what is stored: a reload
    # repeats nothing and skips nothing.
    seen = []
    for _ in range(6):
        page.wait_for_timeout(250)
        if reply.get_attribute("data-status") != "streaming":
            break
        shown = " ".join(reply.locator(".stream-text").inner_text().split())
        stored = " ".join(stored_reply(server)[1].split())
        assert stored.startswith(shown), (shown, stored)
        seen.append(len(shown))
    assert len(seen) >= 2 and seen[-1] > seen[0], "the reply did not visibly grow after reload"
    expect(reply).to_have_attribute("data-status", "complete", timeout=20000)
    status, content = stored_reply(server)
    assert status == "complete"
    shown = reply.locator(".msg-body").inner_text()
    assert " ".join(shown.split()) == " ".join(content.split())  # no repeated or lost words
    expect(page.get_by_label("Message")).to_be_enabled()
    url = page.url

    # Restart the server: the whole conversation is still there.
    server.stop()
    server.start()
    page.goto(url)
    expect(page.locator("article.msg.user")).to_contain_text("Tell me about persistence")
    expect(page.locator("article.msg.assistant .msg-body")).to_contain_text("restart the server")
    expect(page.get_by_role("link", name=re.compile("Tell me about persistence"))).to_be_visible()
