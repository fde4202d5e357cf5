"""Tool steps in the browser: each step is one block (call and result) while the reply streams and
after a reload, and more than five in a row fold under "N steps" both ways. The demo model's
``/steps 7`` makes seven ``calculate`` calls in a row, one per round."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from .conftest import Server
from .test_chat import send, sign_up

pytestmark = pytest.mark.browser


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path, WEBCHAT_DEMO_DELAY_MS="250", WEBCHAT_TITLE_GENERATION="false").start()
    yield srv
    srv.stop()


def test_steps_fold_live_and_after_reload(page: Page, server):
    sign_up(page, server)
    send(page, "/steps 7")
    reply = page.locator("article.msg.assistant").last
    steps = reply.locator("details.tool-step")
    expect(steps.first).to_contain_text("calculate", timeout=10_000)
    expect(steps.first).to_contain_text("1 * 1")
    expect(steps.first.locator(".tool-mark")).to_have_attribute("aria-label", "ok")
    folded = reply.locator("details.tool-steps")
    expect(folded).to_have_count(1, timeout=10_000)  # the sixth step folds the run, live
    expect(reply).to_have_attribute("data-status", "streaming")
    expect(folded.locator("summary").first).to_have_text("7 steps", timeout=10_000)
    expect(reply).to_have_attribute("data-status", "complete", timeout=15_000)
    expect(reply).to_contain_text("7 steps done, one tool call each.")
    expect(reply.locator("details.tool-steps > summary")).to_have_text("7 steps")
    assert reply.locator("details.tool-step").count() == 7  # one block per call and result

    page.reload()
    reply = page.locator("article.msg.assistant").last
    folded = reply.locator("details.tool-steps")
    expect(folded.locator("> summary")).to_have_text("7 steps")
    expect(folded.locator("details.tool-step")).to_have_count(7)
    folded.locator("> summary").click()
    last = folded.locator("details.tool-step").last
    expect(last.locator(".tool-arg")).to_have_text("7 * 7")
    last.locator("> summary").click()
    expect(last.locator(".tool-output")).to_contain_text('"result": 49')
    expect(last.locator(".tool-detail")).to_contain_text('"expression": "7 * 7"')
