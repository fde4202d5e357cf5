"""Take the screenshots in docs/screenshots/ with headless Chromium (Debian's /usr/bin/chromium).

Usage: .venv/bin/python scripts/screenshots.py [gateway | files]
Starts webchat on a throw-away SQLite database, fills one conversation with a reply that shows
Markdown, code, a table and a tool call — a prompt in two versions and a reply in three, so the
message toolbar shows ‹ n/m › — and captures the conversation page in light and dark, on a desktop
and a phone, the toolbar and its menus close up, the edit form, plus a reply mid-stream, search
results and the sign-in page; the sidebar with projects and tags, a project page, the shared
links in settings, the share menu and the shared page signed out; an MCP tool call awaiting
approval (the real mcp-server-time configured in the throw-away instance's mcp.json), the
conversation's tool picker and the Settings panel of tool servers. Then the everyday shots
(``everyday()``): the first-run page, the new-chat page at 360, 390, 768 and 1280 px, the drawer
open on a phone, and an imported Claude Code session
(../shared/fixtures/claude-code/coverage-test-fix.jsonl) read as tool steps, light and dark.
``gateway`` takes only the recording gateway's: the Settings page with a new token and its
snippet, and a conversation a script streams through ``/v1`` with the openai SDK, marked in the
sidebar by the token's name (light mid-stream, dark when done). ``files`` takes only the
files': the composer with files attached, the conversation with their thumbnail and downloads
(light and dark).
"""

from __future__ import annotations

import json
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


def seed(folder: Path, db_url: str) -> str:
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
        return organise(user, conversation)


def organise(user, conversation) -> str:
    """Projects, tags and a share link of ``conversation`` (every branch); the share's id."""
    from webchat.conversations import projects
    from webchat.extensions import db
    from webchat.models import Conversation
    from webchat.shares import services as shares

    garden = projects.create_project(user, "Garden", "Answer as a patient gardener.")
    work = projects.create_project(user, "Work: API design", "Prefer short answers.")
    projects.create_project(user, "Reading list")
    for title, project, tags in (
        ("Roses that climb a north wall", garden, ["plants"]),
        ("When to prune apple trees", garden, ["plants", "fruit"]),
        ("Pagination: cursors or offsets?", work, ["api"]),
        ("Regex for ISO dates", None, ["regex"]),
    ):
        found = db.session.query(Conversation).filter_by(title=title).first()
        found = found or services_create(user, title)
        projects.move(found, project)
        projects.set_tags(found, tags)
    projects.set_tags(conversation, ["flask", "sse"])
    share = shares.create_share(user, conversation, all_branches=True)
    db.session.commit()
    return share.id


def services_create(user, title):
    from webchat.conversations import services

    return services.create_conversation(user, title=title)


def organise_shots(browser, server, ctx, scheme: str, share_id: str) -> None:
    """The sidebar with projects (one open) and tags, a project page, the settings' shared
    links, and the shared page signed out (light and dark; a phone in light)."""
    page = ctx.new_page()
    page.goto(server.url + "/")
    page.locator("details.project", has_text="Garden").locator("summary").click()
    page.wait_for_selector("details.project[open] .conversation-link")
    page.wait_for_timeout(200)
    page.screenshot(path=OUT / f"sidebar-projects-{scheme}.png")
    if scheme == "light":
        page.goto(server.url + "/")
        page.locator("details.project", has_text="Garden").locator("summary").click()
        page.get_by_role("link", name="Open project").click()
        page.wait_for_selector(".project-page")
        page.screenshot(path=OUT / "project-page.png")
        page.goto(server.url + "/settings/")
        page.wait_for_timeout(200)
        page.screenshot(path=OUT / "settings-shares.png")
        page.get_by_role("link", name="Streaming SSE from Flask").first.click()
        page.get_by_label("Conversation actions").click()
        page.wait_for_timeout(200)
        page.screenshot(path=OUT / "share-menu.png")
    page.close()
    anonymous = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
    shared = anonymous.new_page()
    shared.goto(f"{server.url}/s/{share_id}")
    shared.wait_for_selector("article.msg.assistant")
    shared.screenshot(path=OUT / f"shared-{scheme}.png")
    anonymous.close()
    if scheme == "light":
        phone = browser.new_context(
            viewport={"width": 390, "height": 780}, color_scheme=scheme, device_scale_factor=2,
            has_touch=True, is_mobile=True,
        )  # fmt: skip
        shared = phone.new_page()
        shared.goto(f"{server.url}/s/{share_id}")
        shared.wait_for_timeout(300)
        shared.screenshot(path=OUT / "shared-phone.png")
        phone.close()


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


def approval_shots(page, url: str, scheme: str) -> None:
    """A new chat whose demo reply asks mcp-server-time for the time in Tokyo and waits for the
    person's Allow (approval-<scheme>.png), then the Settings panel of tool servers."""
    page.goto(url + "/")
    page.get_by_label("Message").fill('/mcp time__get_current_time {"timezone": "Asia/Tokyo"}')
    page.get_by_label("Message").press("Enter")
    page.wait_for_selector("section.approval", timeout=30_000)
    page.mouse.move(5, 790)
    page.wait_for_timeout(300)
    page.screenshot(path=OUT / f"approval-{scheme}.png")
    if scheme == "light":  # the conversation settings with the tool picker
        page.locator("#settings > summary").click()
        page.wait_for_selector(".tool-picker")
        page.wait_for_timeout(200)
        page.screenshot(path=OUT / "tool-picker.png")
        page.keyboard.press("Escape")
    page.goto(url + "/settings/")
    page.wait_for_selector(".tool-server", timeout=30_000)
    page.locator("#tool-servers").scroll_into_view_if_needed()
    page.wait_for_timeout(200)
    page.screenshot(path=OUT / f"settings-tools-{scheme}.png")


CLAUDE_SESSION = ROOT.parent / "shared" / "fixtures" / "claude-code" / "coverage-test-fix.jsonl"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def seed_imported(folder: Path, db_url: str) -> None:
    """Import the Claude Code session fixture for ada@example.com (skipped when absent)."""
    from webchat import create_app
    from webchat.auth.services import find_user
    from webchat.extensions import db
    from webchat.porting import claude_code
    from webchat.porting.report import ImportReport

    if not CLAUDE_SESSION.exists():
        return
    app = create_app({"DATABASE_URL": db_url, "INSTANCE_PATH": str(folder), "SECRET_KEY": "x"})
    with app.app_context():
        user = find_user("ada@example.com")
        assert user is not None
        existing = claude_code.drafts.sources_of(user, "claude-code")
        claude_code.import_path(user, CLAUDE_SESSION, ImportReport(format="claude-code"), existing)
        db.session.commit()


def everyday(browser, server, url: str) -> None:
    """The first run, the new-chat page at four widths, the drawer, an imported session."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Server(Path(tmp)).start()
        try:
            for scheme, width in (("light", 390), ("dark", 1280)):
                ctx = browser.new_context(viewport={"width": width, "height": 800},
                                          color_scheme=scheme, device_scale_factor=1)  # fmt: skip
                page = ctx.new_page()
                page.goto(fresh.url + "/")
                page.wait_for_timeout(300)
                page.screenshot(path=OUT / f"first-run-{width}-{scheme}.png")
                ctx.close()
        finally:
            fresh.stop()
    for scheme in ("light", "dark"):
        desktop = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
        page = desktop.new_page()
        page.goto(url + "/login")
        page.get_by_label("Email").fill("ada@example.com")
        page.get_by_label("Password").fill("correct horse")
        page.get_by_role("button", name="Sign in").click()
        state = desktop.storage_state()
        for width in (360, 390, 768, 1280):
            if scheme == "dark" and width not in (390, 1280):
                continue
            phone = width < 1000
            ctx = browser.new_context(
                viewport={"width": width, "height": 800 if phone else 800}, color_scheme=scheme,
                storage_state=state, device_scale_factor=2 if phone else 1,
                has_touch=phone, is_mobile=phone,
            )  # fmt: skip
            page = ctx.new_page()
            page.goto(url + "/")
            page.wait_for_timeout(300)
            page.screenshot(path=OUT / f"new-chat-{width}-{scheme}.png")
            if CLAUDE_SESSION.exists() and width in (390, 1280):
                link = page.locator("a.conversation-link", has_text="multiply_numbers").first
                page.goto(url + str(link.get_attribute("href")))
                page.wait_for_selector("details.tool-step")
                steps = page.locator("details.tool-step")
                steps.nth(1).locator("summary").click()
                steps.nth(1).scroll_into_view_if_needed()
                page.wait_for_timeout(300)
                page.screenshot(path=OUT / f"tool-steps-{width}-{scheme}.png")
            if width == 390 and scheme == "light":
                page.goto(url + "/")
                page.locator(".nav-button").click()
                page.wait_for_timeout(400)
                page.screenshot(path=OUT / "drawer-390-light.png")
            ctx.close()
        desktop.close()


def gateway_shots(browser, server) -> None:
    """The gateway: a token made in Settings, then a script's conversation, live and done."""
    import threading

    import openai

    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="light")
    page = ctx.new_page()
    sign_in(page, server)
    page.goto(server.url + "/settings/")
    page.get_by_label("New token's name").fill("notebook")
    page.get_by_role("button", name="Create token").click()
    token = page.get_by_label("New API token").input_value()
    page.wait_for_timeout(200)
    page.screenshot(path=OUT / "gateway-settings-token.png")
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=token)

    failed: list[BaseException] = []

    def script() -> None:
        try:
            ask()
        except BaseException as exc:  # shown after the shots
            failed.append(exc)

    def ask() -> None:
        for _chunk in client.chat.completions.create(
            model="demo/echo",
            messages=[
                {"role": "system", "content": "You are a terse assistant."},
                {"role": "user", "content": "Summarise this log file for me"},
            ],
            stream=True,
        ):
            pass

    caller = threading.Thread(target=script)
    caller.start()
    link = page.locator("a.conversation-link", has_text="Summarise this log file")
    for _ in range(100):  # until the script's request is stored
        assert not failed, failed
        page.goto(server.url + "/")
        if link.count():
            break
        page.wait_for_timeout(100)
    link.click()
    page.wait_for_timeout(900)
    page.screenshot(path=OUT / "gateway-live-light.png")
    caller.join(30)
    reopened(browser, ctx, page.url, "gateway-done-dark.png", color_scheme="dark")
    ctx.close()


def reopened(browser, ctx, url: str, name: str, **options) -> None:
    """Screenshot ``url`` in a new browser context signed in as ``ctx`` is, with ``options``
    (viewport, colour scheme, a phone's…)."""
    options = {"viewport": {"width": 1280, "height": 800}, **options}
    other = browser.new_context(storage_state=ctx.storage_state(), **options)
    page = other.new_page()
    page.goto(url)
    page.wait_for_timeout(500)
    page.screenshot(path=OUT / name)
    other.close()


def sign_in(page, server, shot: Path | None = None) -> None:
    """Sign in as the seeded person (a screenshot of the form first, into ``shot``)."""
    page.goto(server.url + "/login")
    if shot is not None:
        page.screenshot(path=shot)
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill("correct horse")
    page.get_by_role("button", name="Sign in").click()


def files_shots(browser, server, scheme: str) -> None:
    """Files (issue 14): the composer with a pasted screenshot and a PDF attached, then the
    conversation showing their thumbnail and download after sending."""
    from tests import files_corpus as corpus

    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
    page = ctx.new_page()
    sign_in(page, server)
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
        reopened(
            browser, ctx, page.url, "files-phone.png",
            viewport={"width": 390, "height": 780}, color_scheme=scheme,
            device_scale_factor=2, has_touch=True, is_mobile=True,
        )  # fmt: skip
    ctx.close()


def main(only: str | None = None) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        time_server = {"command": sys.executable, "args": ["-m", "mcp_server_time"]}
        (folder / "mcp.json").write_text(json.dumps({"mcpServers": {"time": time_server}}))
        server = Server(folder, WEBCHAT_DEMO_DELAY_MS="120")
        share_id = seed(folder, server.env["WEBCHAT_DATABASE_URL"])
        seed_imported(folder, server.env["WEBCHAT_DATABASE_URL"])
        server.start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=CHROMIUM,
                    args=LAUNCH_ARGS,
                )
                if only == "gateway":
                    gateway_shots(browser, server)
                    browser.close()
                    return
                if only == "files":
                    for scheme in ("light", "dark"):
                        files_shots(browser, server, scheme)
                    browser.close()
                    return
                for scheme in ("dark", "light"):  # light last: it sends a message
                    ctx = browser.new_context(
                        viewport={"width": 1280, "height": 800}, color_scheme=scheme
                    )
                    page = ctx.new_page()
                    sign_in(page, server, OUT / "sign-in.png" if scheme == "light" else None)
                    page.get_by_role("link", name="Streaming SSE from Flask").first.click()
                    page.wait_for_selector("article.msg.assistant")
                    reply = page.locator("article.msg.assistant").last
                    reply.locator("pre").first.hover()  # its toolbar and the code's Copy show
                    page.wait_for_timeout(200)
                    page.screenshot(path=OUT / f"conversation-{scheme}.png")
                    tree_shots(page, scheme)
                    organise_shots(browser, server, ctx, scheme, share_id)
                    approval_shots(page, server.url, scheme)
                    page.get_by_role("link", name="Streaming SSE from Flask").first.click()
                    page.wait_for_selector("article.msg.assistant")
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
                        reopened(
                            browser, ctx, page.url, "conversation-phone.png",
                            viewport={"width": 390, "height": 780}, color_scheme=scheme,
                            device_scale_factor=2, has_touch=True, is_mobile=True,
                        )  # fmt: skip
                    ctx.close()
                everyday(browser, server, server.url)
                for scheme in ("light", "dark"):
                    files_shots(browser, server, scheme)
                browser.close()
        finally:
            server.stop()
    print("wrote", ", ".join(sorted(p.name for p in OUT.glob("*.png"))))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
