"""The Content-Security-Policy in real Chromium: an XSS corpus of hostile message text, titles
and imported content is shown on every page with no script run and no CSP violation reported.

Every page listens for ``securitypolicyviolation`` events from the first moment (an init script);
a violation fails the test, as does any payload that runs (``window.__xss``) or opens a dialog.
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

# Each would bump window.__xss (or open a dialog) if it ever ran.
PAYLOADS = [
    "<script>window.__xss++</script>",
    '<img src=x onerror="window.__xss++">',
    "<svg onload=window.__xss++><circle r=5></svg>",
    "[click me](javascript:window.__xss++)",
    '![pic](x" onerror="window.__xss++)',
    '"><script>window.__xss++</script><input value="',
    "</title><script>window.__xss++</script>",
    '<iframe srcdoc="<script>parent.__xss++</script>"></iframe>',
    '<a href="data:text/html,<script>alert(1)</script>">data</a>',
    '<div style="background:url(javascript:alert(1))">styled</div>',
    "<style>body{display:none}</style>",
    '<base href="https://evil.example/">',
    '<div hx-get="/logout" hx-trigger="load" hx-on:click="window.__xss++">htmx</div>',
    '<object data="javascript:alert(1)"></object><embed src="javascript:alert(1)">',
    "<details open ontoggle=window.__xss++>x</details>",
    "```html\n<script>window.__xss++</script>\n```",
    "| a | b |\n|:-|-:|\n| <img src=x onerror=alert(1)> | 2 |",
    "{{ 7*7 }} {% raw %} ${alert(1)}",
]
TEXT = "XSS corpus\n\n" + "\n\n".join(PAYLOADS)
TITLE = '<img src=x onerror="window.__xss++">"><script>window.__xss++</script>'

LISTEN = """
window.__xss = 0;
window.__violations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__violations.push(e.violatedDirective + " " + e.blockedURI + " " + (e.sample || ""));
});
"""


def chatgpt_export() -> bytes:
    """A ChatGPT ``conversations.json`` whose title and messages are the corpus."""

    def node(i, role, text, parent, children):
        return {
            "id": f"n{i}", "parent": parent, "children": children,
            "message": {"id": f"n{i}", "author": {"role": role}, "create_time": 1700000000 + i,
                        "content": {"content_type": "text", "parts": [text]},
                        "recipient": "all", "metadata": {}},
        }  # fmt: skip

    mapping = {
        "n1": node(1, "user", TEXT, None, ["n2"]),
        "n2": node(2, "assistant", TEXT, "n1", []),
    }
    doc = [{"title": TITLE, "create_time": 1700000000, "update_time": 1700000001,
            "mapping": mapping, "current_node": "n2"}]  # fmt: skip
    return json.dumps(doc).encode()


def check(page: Page, where: str) -> None:
    """No payload ran and no CSP violation was reported on the page shown."""
    page.wait_for_load_state("load")
    page.wait_for_timeout(200)  # late swaps, image loads
    state = page.evaluate("({xss: window.__xss, violations: window.__violations})")
    assert state["xss"] == 0, f"a payload ran on {where}"
    assert state["violations"] == [], f"CSP violations on {where}: {state['violations']}"


def test_xss_corpus_runs_nothing_and_violates_nothing(page: Page, server):
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.add_init_script(LISTEN)
    base = server.url

    for path in ("/login", "/signup"):
        page.goto(base + path)
        check(page, path)
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password", exact=True).fill("correct horse")
    page.get_by_label("Password again").fill("correct horse")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="How can I help?")).to_be_visible()
    check(page, "/ (new chat)")

    # hostile text typed by the person, echoed back by the demo model as it streams
    page.get_by_label("Message").fill(TEXT)
    page.get_by_label("Message").press("Enter")
    reply = page.locator("article.msg.assistant").last
    expect(reply).to_have_attribute("data-status", "complete", timeout=30_000)
    check(page, "a conversation after a streamed reply")
    conversation_url = page.url
    page.reload()
    check(page, "the conversation reloaded")

    # a hostile title, typed into the title field
    title = page.get_by_label("Conversation title (type to rename)")
    title.fill(TITLE)
    title.press("Enter")
    page.wait_for_timeout(300)
    page.goto(conversation_url)
    check(page, "the renamed conversation")

    # hostile imported content: title and messages
    page.goto(base + "/import")
    check(page, "/import")
    page.locator("input[name=file]").set_input_files(
        files=[{"name": "conversations.json", "mimeType": "application/json",
                "buffer": chatgpt_export()}]
    )  # fmt: skip
    page.get_by_role("button", name="Import").click()
    expect(page.locator(".report")).to_contain_text("chatgpt")
    check(page, "the import report")
    page.goto(base + "/")
    check(page, "/ with hostile titles in the sidebar")
    page.locator(".sidebar a", has_text="img src").first.click()
    expect(page.locator("article.msg").first).to_be_visible()
    check(page, "the imported conversation")

    # a token named with a payload; its field selects itself on click (a handler in app.js now)
    page.goto(base + "/settings/")
    page.get_by_label("New token's name").fill(TITLE[:100])
    page.get_by_role("button", name="Create token").click()
    field = page.get_by_label("New API token")
    field.click()
    selected = page.evaluate(
        "(el => el.value.slice(el.selectionStart, el.selectionEnd))(document.activeElement)"
    )
    assert selected.startswith("wc_")
    check(page, "/settings/ with a new token")

    for path in ("/search?q=script", "/search?q=%3Cscript%3E", "/settings/", "/admin/",
                 "/archived", "/trash", "/no-such-page", "/api/v1/conversations"):  # fmt: skip
        page.goto(base + path)
        check(page, path)
    assert dialogs == []
