"""In Chromium: scrolling up through a long conversation loads older windows in place without
moving what the reader sees; a link to an old message opens its window; the sidebar scrolls on."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .browser.conftest import ROOT, Server, browser_type_launch_args  # noqa: F401 (fixture)
from .browser.test_chat import sign_up

pytestmark = pytest.mark.browser


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path).start()
    yield srv
    srv.stop()


def flask_seed(server, *args: str) -> list[str]:
    """``flask seed ada@example.com ARGS`` against the server's database; the new ids."""
    flask = str(Path(sys.executable).parent / "flask")
    out = subprocess.run(
        [flask, "--app", "wsgi", "seed", "ada@example.com", *args],
        cwd=ROOT, env=server.env, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return re.findall(r"^[0-9a-f-]{36}$", out, re.M)


def message_ids(server, conversation_id: str) -> list[str]:
    with sqlite3.connect(server.folder / "webchat.sqlite3") as conn:
        rows = conn.execute(
            "SELECT id FROM messages WHERE conversation_id = ? ORDER BY created_at, id",
            (conversation_id.replace("-", ""),),
        ).fetchall()
    return [f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}" for (h,) in rows]


def top_of(page: Page, selector: str) -> float:
    return page.locator(selector).evaluate("el => el.getBoundingClientRect().top")


def test_scrolling_up_loads_older_windows_in_place(page: Page, server):
    sign_up(page, server)
    (cid,) = flask_seed(server, "--messages", "180")
    ids = message_ids(server, cid)
    page.goto(f"{server.url}/c/{cid}")
    articles = page.locator("#messages article.msg")
    expect(articles).to_have_count(50)
    first_shown = f"#m-{ids[-50]}"
    expect(page.locator(first_shown)).to_be_attached()

    # Scroll to the top: the older window comes in above, and the message that was first stays
    # where the reader sees it.
    page.locator("#messages").evaluate("el => el.scrollTop = 0")
    expect(articles).to_have_count(100, timeout=5000)
    page.wait_for_timeout(300)
    assert abs(top_of(page, first_shown) - top_of(page, "#messages")) < 120
    assert page.locator("#messages").evaluate("el => el.scrollTop") > 1000

    for expected in (150, 180):
        page.locator("#messages").evaluate("el => el.scrollTop = 0")
        expect(articles).to_have_count(expected, timeout=5000)
    expect(page.locator(".history-more")).to_have_count(0)
    shown = page.locator("#messages article.msg").evaluate_all("els => els.map(e => e.id)")
    assert shown == [f"m-{i}" for i in ids]


def test_a_link_to_an_old_message_opens_its_window(page: Page, server):
    sign_up(page, server)
    (cid,) = flask_seed(server, "--messages", "200")
    ids = message_ids(server, cid)
    target = ids[20]
    page.goto(f"{server.url}/c/{cid}#m-{target}")
    expect(page).to_have_url(re.compile(rf"\?around={target}#m-{target}$"))
    expect(page.locator(f"#m-{target}")).to_be_in_viewport()
    # scrolling down from there brings the newer windows in after it
    page.locator("#messages").evaluate("el => el.scrollTop = el.scrollHeight")
    expect(page.locator(f"#m-{ids[70]}")).to_be_attached(timeout=5000)


def test_the_sidebar_scrolls_through_every_conversation(page: Page, server):
    sign_up(page, server)
    flask_seed(server, "--messages", "2", "--conversations", "120")
    page.goto(server.url + "/")
    links = page.locator("#conversation-list .conversation-link")
    expect(links).to_have_count(50)
    for expected in (100, 120):
        page.locator("#conversation-list").evaluate("el => el.scrollTop = el.scrollHeight")
        expect(links).to_have_count(expected, timeout=5000)
    expect(page.locator(".sidebar-more")).to_have_count(0)
