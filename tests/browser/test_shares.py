"""Projects, tags and a share link in Chromium, as a new user would: make a project with
instructions, start two chats in it, tag one, share it, open the link signed out, continue it as
another user, revoke it and see the 404."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from .test_chat import sign_up
from .test_tree import ask

pytestmark = pytest.mark.browser


def test_project_tag_share_continue_and_revoke(page: Page, browser: Browser, server):
    sign_up(page, server)
    # a project, from the sidebar's +
    page.get_by_label("New project").click()
    page.get_by_label("Name").fill("Garden")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", name="Project Garden")).to_be_visible()
    page.get_by_label("Instructions").fill("Answer as a gardener.")
    page.get_by_role("button", name="Save").click()
    project_url = page.url
    # two chats in it
    for question in ("Which roses climb?", "When to prune apples?"):
        page.goto(project_url)
        page.get_by_role("link", name="New chat in this project").click()
        expect(page.get_by_role("heading", name="New chat in Garden")).to_be_visible()
        ask(page, question)
    # tag the second one from its header; the tag then filters the sidebar
    tags = page.get_by_label("Tags, separated by commas")
    tags.fill("fruit")
    tags.press("Enter")
    expect(page.locator(".tags-form a.tag", has_text="#fruit")).to_be_visible()
    # the sidebar: the project, opened, lists both chats
    project = page.locator("details.project", has_text="Garden")
    expect(project).to_have_attribute("open", "")
    expect(project.locator(".conversation-link", has_text="roses")).to_be_visible()
    # share it: from the menu, every branch, no tool calls
    page.get_by_label("Conversation actions").click()
    page.get_by_label("Every branch").check()
    page.get_by_role("button", name="Create share link").click()
    link = page.locator("tr.new-share input.share-url").input_value()
    assert "/s/" in link
    # a private window: no account, no sidebar, no composer, noindex
    private = browser.new_context()
    shared = private.new_page()
    response = shared.goto(link)
    assert response is not None and response.headers["x-robots-tag"].startswith("noindex")
    expect(shared.get_by_role("heading", name="When to prune apples?")).to_be_visible()
    expect(shared.locator("article.msg.assistant")).to_have_count(1)
    expect(shared.locator(".sidebar")).to_have_count(0)
    expect(shared.locator("#composer")).to_have_count(0)
    assert "ada@example.com" not in shared.content()
    # continue as another user: signed out, the button asks to sign in first
    shared.get_by_role("button", name="Sign in to continue this chat").click()
    shared.goto(server.url + "/signup")
    shared.get_by_label("Email").fill("bob@example.com")
    shared.get_by_label("Password", exact=True).fill("correct horse")
    shared.get_by_label("Password again").fill("correct horse")
    shared.get_by_role("button", name="Create account").click()
    shared.goto(link)
    shared.get_by_role("button", name="Continue in my account").click()
    expect(shared.locator("#composer")).to_be_visible()
    expect(shared.locator(".conversation-title input")).to_have_value("When to prune apples?")
    expect(shared.locator("article.msg.user .msg-body")).to_have_text("When to prune apples?")
    # the owner revokes it: the link is a 404 at once
    page.goto(server.url + "/settings/")
    page.get_by_role("button", name="Revoke").click()
    gone = shared.goto(link)
    assert gone is not None and gone.status == 404
    private.close()


def test_keyboard_shortcuts(page: Page, server):
    sign_up(page, server)
    ask(page, "First conversation")
    first = page.url
    page.keyboard.press("Control+Shift+O")  # new chat
    expect(page.get_by_role("heading", name="How can I help?")).to_be_visible()
    ask(page, "Second conversation")
    second = page.url
    # ? lists them; Escape closes the list
    page.locator("main").click()
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Previous / next conversation")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.get_by_role("button", name="Keyboard shortcuts").click()  # the sidebar's ? too
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    # Ctrl+K focuses search
    page.keyboard.press("Control+k")
    expect(page.get_by_label("Search conversations")).to_be_focused()
    # Alt+↓ / Alt+↑ walk the sidebar's conversations (newest first)
    page.get_by_label("Search conversations").press("Alt+ArrowDown")
    page.wait_for_url(first)
    page.keyboard.press("Alt+ArrowUp")
    page.wait_for_url(second)
    # copy the last reply: its Copy button says so
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.keyboard.press("Control+Shift+C")
    expect(page.locator("article.msg.assistant [data-copy]").last).to_have_attribute(
        "aria-label", "Copied"
    )
    # ↑ in the empty message box edits the last prompt
    page.get_by_label("Message").focus()
    page.keyboard.press("ArrowUp")
    expect(page.get_by_label("Edit your prompt")).to_be_visible()


def test_drag_a_conversation_into_a_project_and_out(page: Page, server):
    sign_up(page, server)
    page.get_by_label("New project").click()
    page.get_by_label("Name").fill("Garden")
    page.get_by_role("button", name="Create project").click()
    page.get_by_role("link", name="+ New chat").click()
    ask(page, "Loose tomatoes")
    loose = page.locator("#conversation-list a.conversation-link", has_text="Loose tomatoes")
    loose.drag_to(page.locator("summary[data-project-id]", has_text="Garden"))
    project = page.locator("details.project", has_text="Garden")
    expect(project).to_have_attribute("open", "")  # reloaded: the open chat is in the project
    expect(project.locator(".conversation-link", has_text="Loose tomatoes")).to_be_visible()
    expect(loose).to_have_count(0)
    inside = project.locator(".conversation-link", has_text="Loose tomatoes")
    inside.drag_to(page.locator(".chats-heading"))
    expect(
        page.locator("#conversation-list a.conversation-link", has_text="Loose tomatoes")
    ).to_be_visible()
