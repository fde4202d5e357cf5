"""The conversation as a tree in Chromium: regenerate, ‹ n/m ›, edit a prompt, reload and switch
between the branches; a reply keeps streaming while another branch is shown."""

from __future__ import annotations

import sqlite3

import pytest
from playwright.sync_api import Page, expect

from .test_chat import sign_up

pytestmark = pytest.mark.browser


def ask(page: Page, text: str) -> None:
    """Send ``text`` from the composer and wait for the whole reply."""
    prompts = page.locator("article.msg.user")
    before = prompts.count()
    composer = page.get_by_label("Message")
    composer.fill(text)
    composer.press("Enter")
    expect(prompts).to_have_count(before + 1)
    expect(page.locator("article.msg.assistant").last).to_have_attribute(
        "data-status", "complete", timeout=20000
    )


def reply(page: Page):
    return page.locator("article.msg.assistant").last


def versions(bubble):
    return bubble.locator(".version-count")


def test_regenerate_switch_edit_and_reload(page: Page, server):
    sign_up(page, server)
    ask(page, "Name a tree")
    first_text = reply(page).locator(".msg-body").inner_text()

    for n in (2, 3):
        reply(page).hover()
        reply(page).get_by_role("button", name="Regenerate", exact=True).click()
        expect(versions(reply(page))).to_have_text(f"{n}/{n}")  # the new reply, streaming
        expect(reply(page)).to_have_attribute("data-status", "complete", timeout=20000)
    expect(page.locator("article.msg.assistant")).to_have_count(1)  # one path shown

    # ‹ twice: to 1/3, swapped in place (no page load), the focus kept on the arrow.
    page.evaluate("window.notReloaded = true")
    for n in (2, 1):
        reply(page).get_by_role("button", name="Previous version").click()
        expect(versions(reply(page))).to_have_text(f"{n}/3")
    expect(reply(page).get_by_role("button", name="Previous version")).to_be_disabled()
    expect(reply(page).get_by_role("button", name="Next version")).to_be_focused()
    assert page.evaluate("window.notReloaded") is True
    assert reply(page).locator(".msg-body").inner_text() == first_text

    # Edit the first prompt: an inline form in place of the bubble; a new reply streams.
    user = page.locator("article.msg.user")
    user.hover()
    user.get_by_role("link", name="Edit").click()
    editor = page.get_by_label("Edit your prompt")
    expect(editor).to_be_focused()
    editor.fill("Name a flower")
    editor.press("Enter")
    expect(reply(page)).to_contain_text("Name a flower", timeout=20000)
    expect(reply(page)).to_have_attribute("data-status", "complete", timeout=20000)
    expect(versions(page.locator("article.msg.user"))).to_have_text("2/2")

    # Reload: both branches are there, and ‹ › switches between them.
    page.reload()
    user = page.locator("article.msg.user")
    expect(versions(user)).to_have_text("2/2")
    expect(reply(page)).to_contain_text("Name a flower")
    user.get_by_role("button", name="Previous version").click()
    expect(versions(page.locator("article.msg.user"))).to_have_text("1/2")
    expect(reply(page)).to_contain_text("Name a tree")
    expect(versions(reply(page))).to_have_text("3/3")  # the newest path below it
    page.locator("article.msg.user").get_by_role("button", name="Next version").click()
    expect(versions(page.locator("article.msg.user"))).to_have_text("2/2")
    expect(reply(page)).to_contain_text("Name a flower")
    page.reload()
    expect(reply(page)).to_contain_text("Name a flower")  # the active path was stored

    # Two more messages from the same page: each answers the reply before it (one path).
    ask(page, "And a bush?")
    ask(page, "And a weed?")
    expect(page.locator("article.msg.user")).to_have_count(3)
    expect(page.locator("article.msg.assistant")).to_have_count(3)


def stored(server, message_id: str) -> tuple[str, str]:
    with sqlite3.connect(server.folder / "webchat.sqlite3") as conn:
        row = conn.execute(
            "SELECT status, content FROM messages WHERE replace(id, '-', '') = ?",
            (message_id.replace("-", ""),),
        ).fetchone()
    return row


def test_a_reply_keeps_streaming_across_a_branch_switch(page: Page, server):
    sign_up(page, server)
    ask(page, "/long 70")  # 70 words, 60 ms each: about 4 s
    reply(page).hover()
    reply(page).get_by_role("button", name="Regenerate", exact=True).click()
    expect(reply(page)).to_have_attribute("data-status", "streaming")
    live_id = reply(page).get_attribute("id")[2:]
    expect(reply(page).locator(".stream-text")).to_contain_text("stream delta", timeout=5000)

    # Away to 1/2 while it streams: the finished reply shows; the run goes on.
    reply(page).get_by_role("button", name="Previous version").click()
    expect(versions(reply(page))).to_have_text("1/2")
    expect(reply(page)).to_have_attribute("data-status", "complete")
    page.wait_for_timeout(800)
    status, content = stored(server, live_id)
    assert status == "streaming"

    # Back to 2/2: the bubble reconnects, starts exact (snapshot) and keeps growing live.
    reply(page).get_by_role("button", name="Next version").click()
    expect(versions(reply(page))).to_have_text("2/2")
    bubble = page.locator(f"#m-{live_id}")
    expect(bubble).to_have_attribute("data-status", "streaming")
    shown = lambda: " ".join(bubble.locator(".stream-text").inner_text().split())  # noqa: E731
    expect(bubble.locator(".stream-text")).to_contain_text(content.split()[-1], timeout=3000)
    before = len(shown())
    page.wait_for_timeout(600)
    if bubble.get_attribute("data-status") == "streaming":
        assert len(shown()) > before, "the reply did not grow after switching back"
    expect(bubble).to_have_attribute("data-status", "complete", timeout=20000)
    status, content = stored(server, live_id)
    assert status == "complete"
    assert " ".join(bubble.locator(".msg-body").inner_text().split()) == " ".join(content.split())


def test_copy_edit_a_reply_and_feedback(page: Page, server):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    sign_up(page, server)
    ask(page, "Say hello")
    bubble = reply(page)
    bubble.hover()
    bubble.get_by_role("button", name="Copy").click()
    expect(bubble.get_by_role("button", name="Copied")).to_be_visible()
    _, content = stored(server, bubble.get_attribute("id")[2:])
    assert page.evaluate("navigator.clipboard.readText()") == content  # the raw Markdown

    # Edit the reply: saved as a new version (Ctrl+Enter), rendered, no run.
    bubble.get_by_role("link", name="Edit").click()
    editor = page.get_by_label("Edit the reply")
    editor.fill("Hello in **Python**:\n\n```python\nprint('hello')\n```")
    editor.press("Control+Enter")
    bubble = reply(page)
    expect(bubble.locator("strong")).to_have_text("Python")
    expect(versions(bubble)).to_have_text("2/2")
    expect(bubble).to_contain_text("edited")
    bubble.locator("pre").hover()
    bubble.get_by_role("button", name="Copy code").click()
    assert page.evaluate("navigator.clipboard.readText()") == "print('hello')\n"

    # Thumbs down opens the comment box; the comment is stored and shown.
    bubble.get_by_role("button", name="Bad reply").click()
    comment = page.get_by_label("What was wrong with it?")
    expect(comment).to_be_focused()
    comment.fill("Too short")
    comment.press("Tab")
    page.get_by_role("button", name="Save").click()
    expect(reply(page).locator(".feedback-note")).to_have_text("“Too short”")
    page.reload()
    expect(reply(page).get_by_role("button", name="Bad reply")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(reply(page).locator(".feedback-note")).to_have_text("“Too short”")


def test_toolbar_shows_on_hover_on_keyboard_focus_and_always_on_touch(page: Page, server):
    sign_up(page, server)
    ask(page, "Hello")
    actions = reply(page).locator(".msg-actions")
    page.mouse.move(1, 1)
    expect(actions).to_have_css("opacity", "0")
    reply(page).hover()
    expect(actions).to_have_css("opacity", "1")
    page.mouse.move(1, 1)
    expect(actions).to_have_css("opacity", "0")
    reply(page).get_by_role("button", name="Copy").focus()  # as Tab would
    expect(actions).to_have_css("opacity", "1")

    phone = page.context.browser.new_context(
        viewport={"width": 390, "height": 780},
        has_touch=True,
        is_mobile=True,
        storage_state=page.context.storage_state(),
    )
    touch = phone.new_page()
    touch.goto(page.url)
    assert touch.evaluate("matchMedia('(hover: none)').matches")
    expect(touch.locator("article.msg.assistant .msg-actions")).to_have_css("opacity", "1")
    expect(touch.locator("article.msg.user .msg-actions")).to_have_css("opacity", "1")
    box = touch.locator("article.msg.assistant .msg-toolbar").bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390  # fits a phone's width
    phone.close()
