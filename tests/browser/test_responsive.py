"""Every page at 360, 390, 768 and 1280 px wide in Chromium: nothing scrolls sideways, the
composer's message box takes the row (at least half the viewport), fields use 16 px text, touch
targets are 44 px on phones, and the sidebar is a drawer on narrow screens. Screenshots of each
page at each width go to the test's folder (docs/screenshots/ holds the kept ones,
scripts/screenshots.py)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from .test_chat import send, sign_up

pytestmark = pytest.mark.browser

WIDTHS = (360, 390, 768, 1280)
DRAWER_BELOW = 900  # px: the sidebar is a drawer at this width and narrower (static/css/app.css)

# What the page measures: its overflow, the composer's box, the fields' text, small targets.
MEASURE = """() => {
  const root = document.documentElement;
  const box = document.querySelector('#composer textarea');
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && r.right > 0
      && r.left < innerWidth;
  };
  const fields = [...document.querySelectorAll(
      'input:not([type=hidden]):not([type=checkbox]), select, textarea')]
    .filter(visible).map((el) => parseFloat(getComputedStyle(el).fontSize));
  const targets = [...document.querySelectorAll(
      '.topbar button, .topbar > details > summary, .nav-button, #composer button, ' +
      '#composer select, .msg-toolbar button, .tool > summary, .button')]
    .filter(visible)
    .filter((el) => el.getBoundingClientRect().height < 44)
    .map((el) => el.outerHTML.slice(0, 80));
  const wide = [...document.querySelectorAll(
      '.main, .messages, .page, .settings-page, .usage-page, .msg')]
    .filter((el) => el.scrollWidth > el.clientWidth + 1).map((el) => el.className);
  return {
    scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, wide: wide,
    box: box ? box.getBoundingClientRect().width : null,
    smallestField: fields.length ? Math.min(...fields) : null,
    smallTargets: targets,
  };
}"""


def pages(page: Page, base: str) -> list[str]:
    """Paths of every kind of page, with a conversation that has tool steps and code."""
    page.goto(base + "/")
    for text in ("/tool 1231 * 2331", "/markdown"):
        send(page, text)
        expect(page.locator("article.msg.assistant").last).to_have_attribute(
            "data-status", "complete", timeout=15_000
        )
    conversation = page.url.removeprefix(base)
    return ["/", conversation, "/search?q=tool", "/settings/", "/usage/", "/import",
            "/archived", "/trash"]  # fmt: skip


def test_every_page_fits_every_width(page: Page, server, tmp_path):
    sign_up(page, server)
    paths = pages(page, server.url)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 800})
        for path in paths:
            page.goto(server.url + path)
            page.wait_for_load_state("networkidle")
            seen = page.evaluate(MEASURE)
            where = f"{path} at {width} px"
            page.screenshot(
                path=tmp_path / f"{path.strip('/').replace('/', '-') or 'new'}-{width}.png"
            )
            assert seen["scrollWidth"] <= seen["clientWidth"], f"{where} scrolls sideways: {seen}"
            assert seen["wide"] == [], f"{where}: these scroll sideways: {seen}"
            if seen["box"] is not None:
                assert seen["box"] >= width / 2, f"{where}: the message box is {seen['box']} px"
            if seen["smallestField"] is not None:
                assert seen["smallestField"] >= 16, f"{where}: a field has small text: {seen}"
            if width <= DRAWER_BELOW:
                assert seen["smallTargets"] == [], f"{where}: targets under 44 px: {seen}"


def test_the_sidebar_is_a_drawer_on_a_phone(page: Page, server):
    sign_up(page, server)
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(server.url + "/")
    sidebar = page.locator("aside.sidebar")
    expect(sidebar).to_be_hidden()
    # the new-chat box is usable: the picker sits under the box, which takes the row
    box = page.get_by_label("Message").bounding_box()
    picker = page.locator("#composer select").bounding_box()
    assert box and picker and box["width"] > 300 and picker["y"] >= box["y"] + box["height"] - 1
    page.locator(".nav-button").click()
    expect(sidebar).to_be_visible()
    expect(sidebar.get_by_role("link", name="+ New chat")).to_be_in_viewport()
    page.keyboard.press("Escape")
    expect(sidebar).to_be_hidden()
    # by keyboard alone: Tab reaches the drawer's switch, Space opens it
    for _ in range(20):  # the drawer's switch is in the tab order (its label cannot be)
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "nav-toggle":
            break
    assert page.evaluate("document.activeElement.id") == "nav-toggle"
    page.keyboard.press("Space")
    expect(sidebar).to_be_visible()
    page.set_viewport_size({"width": 1280, "height": 800})
    page.keyboard.press("Escape")
    expect(sidebar).to_be_visible()  # on a desktop the sidebar is always there
