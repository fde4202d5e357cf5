"""A tool call and its result show as one collapsible step while a reply streams, and after a
reload.

gunicorn talks to the loopback fake upstream, which replays the recorded OpenAI tool-call
exchange (../shared/fixtures/openai/test_tool_use_basic.yaml) slowly enough to watch. The
recorded tool, ``multiply``, is not a webchat tool, so its result is the error webchat stores
for an unknown tool — a failed tool result is shown like any other, marked as an error.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from ..conftest import fixture_path
from ..fakes.upstream import FakeUpstream, cassette_replies
from .conftest import Server
from .test_chat import sign_up

pytestmark = pytest.mark.browser


@pytest.fixture
def upstream():
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def server(tmp_path, upstream):
    srv = Server(
        tmp_path,
        OPENAI_API_KEY="sk-browser-test",
        OPENAI_BASE_URL=upstream.url + "/v1",
        WEBCHAT_OPENAI_MODELS='["gpt-4o-mini"]',
        WEBCHAT_OPENAI_LIST_MODELS="false",
        WEBCHAT_PROVIDER_MAX_RETRIES="0",
        WEBCHAT_TITLE_GENERATION="false",
    ).start()
    yield srv
    srv.stop()


def test_tool_blocks_show_live_and_after_reload(page: Page, server, upstream):
    call, answer = cassette_replies(fixture_path("openai", "test_tool_use_basic.yaml"))
    call.pause, answer.pause = 0.05, 0.15  # the answer streams for about four seconds
    upstream.queue(call, answer)
    sign_up(page, server)
    page.locator("select[name=model]").select_option("openai/gpt-4o-mini")
    composer = page.get_by_label("Message")
    composer.fill("What is 1231 * 2331?")
    composer.press("Enter")

    reply = page.locator("article.msg.assistant").last
    step = reply.locator("details.tool-step")  # the call and its result: one block
    expect(step).to_contain_text("multiply", timeout=10_000)
    expect(step.locator(".tool-arg")).to_have_text("1231")  # its first argument
    expect(step.locator(".tool-mark")).to_have_attribute("aria-label", "error")
    expect(reply).to_have_attribute("data-status", "streaming")  # still live: the answer streams
    step.locator("summary").click()  # the block opens to show the arguments and the result
    expect(step).to_contain_text('"a": 1231')
    expect(step.locator(".tool-output")).to_contain_text("no tool named 'multiply'")
    expect(reply).to_have_attribute("data-status", "complete", timeout=15_000)
    expect(reply).to_contain_text("2,869,461")  # the recorded answer

    page.reload()
    reply = page.locator("article.msg.assistant").last
    expect(reply.locator("details.tool-step")).to_have_count(1)
    expect(reply.locator("details.tool-step.failed")).to_contain_text("multiply")
    expect(reply.locator("details.tool-step.failed .tool-output")).to_contain_text(
        "no tool named 'multiply'"
    )
    expect(reply.locator(".model")).to_have_attribute(  # the reply's two steps: 54 + 87, 20 + 26
        "title", "openai/gpt-4o-mini · 141 in / 46 out tokens · finish: stop"
    )
