"""Take the screenshots in docs/screenshots/ with headless Chromium (Debian's /usr/bin/chromium).

Usage: .venv/bin/python scripts/screenshots.py [--files]   (--files: the files shots alone)
Starts webchat on a throw-away SQLite database, fills one conversation with a reply that shows
Markdown, code, a table and a tool call — a prompt in two versions and a reply in three, so the
message toolbar shows ‹ n/m › — and captures the conversation page in light and dark, on a desktop
and a phone, the toolbar and its menus close up, the edit form, plus a reply mid-stream, search
results and the sign-in page; and files: the composer with files attached, the conversation
with their thumbnail and downloads (light and dark).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import CHROMIUM, Server  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
REPLY = """Here is a small **Flask** view that streams Server-Sent Events:

```python
@bp.get("/stream")
def stream():
    def events():
        for i in range(3):
            yield f"data: {i}\\n\\n"
    return Response(events(), mimetype="text/event-stream")
```

| store | writes per second | durable within |
|---|---|---|
| batched deltas | ≤ 10 | 100 ms |
| one write per token | ~50 | at once |

Each delta is appended with `content = content || :delta`, so a write costs the same at any length.
"""


SHORTER = """Use `flask.stream_with_context` and yield `data:` lines:

```python
return Response(stream_with_context(events()), mimetype="text/event-stream")
```
"""


def seed(folder: Path, db_url: str) -> None:
    from webchat import create_app, tree
    from webchat.auth.services import create_user
    from webchat.conversations import services
    from webchat.extensions import db
    from webchat.models import Message, Role, Status, new_id
    from webchat.rendering import render_markdown
    from webchat.streaming.store import next_timestamp

    app = create_app({"DATABASE_URL": db_url, "INSTANCE_PATH": str(folder), "SECRET_KEY": "x"})
    with app.app_context():
        user = create_user("ada@example.com", "correct horse")
        titles = ("Trip to Lisbon: a 3-day plan", "Regex for ISO dates", "SQL window functions")
        for title in titles:
            services.create_conversation(user, title=title)
        conversation = services.create_conversation(user, title="Streaming SSE from Flask")

        def add(parent: Message | None, role: str, text: str) -> Message:
            created = next_timestamp(parent.created_at if parent else None)
            message = Message(
                id=new_id(), conversation_id=conversation.id,
                parent_id=parent.id if parent else None, role=role, content=text,
                status=Status.COMPLETE, created_at=created,
                updated_at=created, content_html=render_markdown(text),
                meta={"model": "demo/echo", "usage": {"input_tokens": 14, "output_tokens": 120},
                      "finish_reason": "stop"} if role == Role.ASSISTANT else {},
            )  # fmt: skip
            tree.attach(message, parent)
            db.session.add(message)
            db.session.flush()
            return message

        first = add(None, Role.USER, "How do I stream events from Flask?")
        add(first, Role.ASSISTANT, SHORTER)
        prompt = add(None, Role.USER, "How do I stream Server-Sent Events from a Flask view?")
        add(prompt, Role.ASSISTANT, SHORTER)
        shown = add(prompt, Role.ASSISTANT, REPLY)
        shown.feedback_rating = "up"
        add(prompt, Role.ASSISTANT, REPLY.replace("small **Flask** view", "**Flask** view"))
        tree.set_active(conversation, shown.id)
        db.session.commit()


def tree_shots(page, scheme: str) -> None:
    """The message toolbar close up: ‹ n/m ›, the Regenerate model menu, a comment on a reply,
    and a prompt being edited in place."""
    reply = page.locator("article.msg.assistant").filter(has=page.locator(".versions")).last
    reply.hover()
    reply.locator(".model-menu > summary").click()
    page.wait_for_timeout(150)
    box = reply.bounding_box()
    assert box is not None
    clip = {"x": box["x"] - 16, "y": box["y"] + box["height"] - 260, "width": box["width"] + 32,
            "height": 400}  # fmt: skip
    page.screenshot(path=OUT / f"tree-toolbar-{scheme}.png", clip=clip)
    page.keyboard.press("Escape")
    reply.locator(".model-menu > summary").click()  # closes it
    if scheme == "light":
        prompt = page.locator("article.msg.user").last
        prompt.hover()
        prompt.get_by_role("link", name="Edit").click()
        page.get_by_label("Edit your prompt").wait_for()
        page.wait_for_timeout(200)
        page.screenshot(path=OUT / "tree-edit.png")
        page.get_by_role("link", name="Cancel").click()
        page.wait_for_selector("article.msg.user")


def files_shots(browser, server, scheme: str) -> None:
    """Files (issue 14): the composer with a pasted screenshot and a PDF attached, then the
    conversation showing their thumbnail and download after sending."""
    from tests import files_corpus as corpus

    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
    page = ctx.new_page()
    page.goto(server.url + "/login")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill("correct horse")
    page.get_by_role("button", name="Sign in").click()
    page.goto(server.url + "/")
    shot = OUT.parent / "screenshots" / "conversation-light.png"
    page.locator("[data-attach-input]").set_input_files(
        [
            {"name": "screenshot.png", "mimeType": "image/png", "buffer": shot.read_bytes()},
            {"name": "q3-report.pdf", "mimeType": "application/pdf", "buffer": corpus.text_pdf()},
            {"name": "notes.md", "mimeType": "text/markdown", "buffer": b"# Notes\n"},
        ]
    )
    page.wait_for_selector("#composer-files .file-chip[data-file-id] >> nth=2")
    page.get_by_label("Message").fill("What does this screenshot show, and does the report agree?")
    page.screenshot(path=OUT / f"files-composer-{scheme}.png")
    page.get_by_role("button", name="Send").click()
    page.wait_for_selector('article.msg.assistant[data-status="complete"]', timeout=20000)
    page.reload()
    page.wait_for_timeout(400)
    page.screenshot(path=OUT / f"files-conversation-{scheme}.png")
    if scheme == "light":
        phone_shot(browser, ctx, page.url, scheme, "files-phone.png")
    ctx.close()


def phone_shot(browser, ctx, url: str, scheme: str, name: str) -> None:
    """``url`` on a 390-pixel phone (touch, 2× pixels) signed in as ``ctx`` is, saved as
    ``name``."""
    mobile = browser.new_context(
        viewport={"width": 390, "height": 780}, color_scheme=scheme,
        storage_state=ctx.storage_state(), device_scale_factor=2,
        has_touch=True, is_mobile=True,
    )  # fmt: skip
    phone = mobile.new_page()
    phone.goto(url)
    phone.wait_for_timeout(500)
    phone.screenshot(path=OUT / name)
    mobile.close()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server = Server(folder, WEBCHAT_DEMO_DELAY_MS="120")
        seed(folder, server.env["WEBCHAT_DATABASE_URL"])
        server.start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=CHROMIUM,
                    args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update",
                          "--disable-sync"],
                )  # fmt: skip
                only_files = "--files" in sys.argv  # the files shots alone (issue 14)
                for scheme in () if only_files else ("dark", "light"):  # light last: it sends
                    ctx = browser.new_context(
                        viewport={"width": 1280, "height": 800}, color_scheme=scheme
                    )
                    page = ctx.new_page()
                    page.goto(server.url + "/login")
                    if scheme == "light":
                        page.screenshot(path=OUT / "sign-in.png")
                    page.get_by_label("Email").fill("ada@example.com")
                    page.get_by_label("Password").fill("correct horse")
                    page.get_by_role("button", name="Sign in").click()
                    page.get_by_role("link", name="Streaming SSE from Flask").click()
                    page.wait_for_selector("article.msg.assistant")
                    reply = page.locator("article.msg.assistant").last
                    reply.locator("pre").first.hover()  # its toolbar and the code's Copy show
                    page.wait_for_timeout(200)
                    page.screenshot(path=OUT / f"conversation-{scheme}.png")
                    tree_shots(page, scheme)
                    if scheme == "dark":
                        page.goto(server.url + "/search?q=stream+events")
                        page.wait_for_timeout(300)
                        page.screenshot(path=OUT / "search-dark.png")
                    if scheme == "light":
                        page.mouse.move(5, 790)  # away from the toolbars
                        page.get_by_label("Message").fill("And how do I resume after a reload?")
                        page.get_by_label("Message").press("Enter")
                        page.wait_for_timeout(1800)
                        page.screenshot(path=OUT / "streaming.png")
                        page.locator("article.msg.assistant").last.get_by_role(
                            "button", name="Stop"
                        ).click()
                        page.wait_for_timeout(500)
                        phone_shot(browser, ctx, page.url, scheme, "conversation-phone.png")
                    ctx.close()
                for scheme in ("light", "dark"):
                    files_shots(browser, server, scheme)
                browser.close()
        finally:
            server.stop()
    print("wrote", ", ".join(sorted(p.name for p in OUT.glob("*.png"))))


if __name__ == "__main__":
    main()
