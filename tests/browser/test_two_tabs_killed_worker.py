"""Two tabs on one conversation; the worker generating the reply is killed with SIGKILL.

Both tabs follow the reply live; after the kill, gunicorn starts a new worker, whose reaper marks
the reply interrupted (its text as stored), both tabs reconnect on their own and show it with
Retry; Retry in one tab streams a new version of the reply that both tabs show after a reload,
with the interrupted one a click away (‹ 1/2).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time

import pytest
from playwright.sync_api import Page, expect

from .conftest import Server
from .test_chat import sign_up

pytestmark = pytest.mark.browser


@pytest.fixture
def server(tmp_path):
    srv = Server(
        tmp_path,
        WEBCHAT_DEMO_DELAY_MS="60",
        WEBCHAT_STALE_RUN_AFTER_MS="3000",
        WEBCHAT_REAPER_INTERVAL_MS="1000",
        WEBCHAT_HEARTBEAT_INTERVAL_MS="500",
    ).start()
    yield srv
    srv.stop()


def worker_pid(server: Server) -> int:
    """The pid of gunicorn's (only) worker."""
    out = subprocess.run(
        ["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert len(out) == 1, out
    return int(out[0])


def stored(server: Server) -> list[tuple[str, str, str]]:
    with sqlite3.connect(server.folder / "webchat.sqlite3") as conn:
        return conn.execute(
            "SELECT role, status, content FROM messages ORDER BY created_at, id"
        ).fetchall()


def test_two_tabs_follow_a_reply_through_a_killed_worker(page: Page, server):
    sign_up(page, server)
    page.get_by_label("Message").fill("/long 400")
    page.get_by_label("Message").press("Enter")
    reply = page.locator("article.msg.assistant").last
    expect(reply).to_have_attribute("data-status", "streaming")

    second = page.context.new_page()
    second.goto(page.url)
    other = second.locator("article.msg.assistant").last
    expect(other).to_have_attribute("data-status", "streaming")
    expect(other.locator(".stream-text")).to_contain_text("stream delta", timeout=5000)

    old = worker_pid(server)
    os.kill(old, signal.SIGKILL)
    killed_at = time.monotonic()
    text_at_kill = stored(server)[-1][2]

    # Both tabs reconnect to the new worker and show the reply interrupted, with its text.
    for tab in (reply, other):
        expect(tab).to_have_attribute("data-status", "interrupted", timeout=20000)
        expect(tab.get_by_role("button", name="Retry")).to_be_visible()
    assert worker_pid(server) != old
    role, status, content = stored(server)[-1]
    assert (role, status) == ("assistant", "interrupted")
    assert content == text_at_kill and len(content) > 0  # nothing lost, nothing added
    assert time.monotonic() - killed_at < 20

    # Retry in one tab: a new reply streams to the end; the other tab sees it after a reload.
    reply.get_by_role("button", name="Retry").click()
    newest = page.locator("article.msg.assistant").last
    expect(newest).to_have_attribute("data-status", "complete", timeout=40000)
    second.reload()
    statuses = second.locator("article.msg.assistant").evaluate_all(
        "els => els.map(e => e.dataset.status)"
    )
    # The retried reply is a new version of the interrupted one (2/2); the page shows one path,
    # and the interrupted reply, with its text, is one click away.
    assert statuses == ["complete"]
    expect(second.get_by_role("group", name="Version 2 of 2")).to_be_visible()
    second.get_by_role("button", name="Previous version").click()
    expect(second.locator("article.msg.assistant").last).to_have_attribute(
        "data-status", "interrupted"
    )
    expect(second.locator("article.msg.assistant").last).to_contain_text(text_at_kill[:20])
    assert [s for _, s, _ in stored(server)] == ["complete", "interrupted", "complete"]
