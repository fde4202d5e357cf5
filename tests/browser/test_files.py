"""A person attaches files in real Chromium: a pasted screenshot and a PDF from the file picker,
chips with progress and a remove button, the thumbnails after a reload; hostile files open as
downloads or as plain images, and nothing in them runs."""

from __future__ import annotations

import base64
import contextlib

import pytest
from playwright.sync_api import Error, Page, expect

from .. import files_corpus as corpus
from .test_chat import sign_up

pytestmark = pytest.mark.browser
UPLOADS_MS = 20_000  # how long uploads may take on a loaded machine before a test gives up

PASTE = """async (b64) => {
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], "image.png", {type: "image/png"}));
  const area = document.querySelector("#composer textarea");
  area.focus();
  const init = {clipboardData: data, bubbles: true, cancelable: true};
  area.dispatchEvent(new ClipboardEvent("paste", init));
}"""


DROP = """(text) => {
  const data = new DataTransfer();
  data.items.add(new File([text], "dropped.txt", {type: "text/plain"}));
  const init = {dataTransfer: data, bubbles: true, cancelable: true};
  document.querySelector("#messages, main").dispatchEvent(new DragEvent("dragover", init));
  document.querySelector("#messages, main").dispatchEvent(new DragEvent("drop", init));
}"""


def test_paste_a_screenshot_attach_a_pdf_send_and_see_thumbnails_after_reload(page: Page, server):
    sign_up(page, server)
    page.evaluate(PASTE, base64.b64encode(corpus.png((640, 400))).decode())
    page.locator("[data-attach-input]").set_input_files(
        [
            {"name": "report.pdf", "mimeType": "application/pdf", "buffer": corpus.text_pdf()},
            {"name": "junk.bin", "mimeType": "image/png", "buffer": b"MZ\x90\x00junk"},
            {"name": "drop-me.txt", "mimeType": "text/plain", "buffer": b"removed before send"},
        ]
    )
    chips = page.locator("#composer-files .file-chip")
    expect(chips).to_have_count(3, timeout=UPLOADS_MS)  # the junk refused, its chip gone
    expect(page.locator("#composer-error")).to_contain_text("junk.bin: This kind of file")
    expect(page.locator("#composer-files .file-chip.uploading")).to_have_count(
        0, timeout=UPLOADS_MS
    )
    expect(chips.filter(has_text="report.pdf")).to_have_count(1)
    page.get_by_role("button", name="Remove drop-me.txt").click()
    expect(chips).to_have_count(2)
    page.evaluate(DROP, "dropped on the page")  # files dropped anywhere on the page
    expect(chips).to_have_count(3)
    expect(chips.filter(has_text="dropped.txt")).to_have_count(1)
    expect(page.locator("#composer-files .file-chip.uploading")).to_have_count(
        0, timeout=UPLOADS_MS
    )
    page.get_by_label("Message").fill("What is in these?")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("article.msg.assistant").last).to_have_attribute(
        "data-status", "complete", timeout=15000
    )
    expect(chips).to_have_count(0)  # sent with the message
    page.reload()
    user = page.locator("article.msg.user").last
    image = user.locator(".msg-files img")
    expect(image).to_have_count(1)
    expect(image).to_have_attribute("loading", "lazy")
    assert image.evaluate("img => img.complete && img.naturalWidth") == 320  # the thumbnail
    expect(user.locator(".msg-file").first).to_contain_text("report.pdf")
    expect(user.locator(".msg-file").first).to_have_attribute("download", "report.pdf")
    expect(user.locator(".msg-file").last).to_contain_text("dropped.txt")


def test_hostile_files_run_nothing_in_chromium(page: Page, server):
    sign_up(page, server)
    page.locator("[data-attach-input]").set_input_files(
        [
            {"name": "x.svg", "mimeType": "image/svg+xml", "buffer": corpus.SVG_WITH_SCRIPT},
            {"name": "x.html", "mimeType": "text/html", "buffer": corpus.HTML_PAGE},
            {"name": "x.jpg", "mimeType": "text/html", "buffer": corpus.polyglot_jpeg_html()},
        ]
    )
    uploaded = page.locator("#composer-files .file-chip[data-file-id]")
    expect(uploaded).to_have_count(3, timeout=UPLOADS_MS)
    ids = page.locator("#composer-files input[name=files]").evaluate_all(
        "inputs => inputs.map(i => i.value)"
    )
    for file_id in ids[:2]:  # SVG and HTML: downloads, never pages
        # Chromium reports "Download is starting" for the navigation
        with page.expect_download() as download, contextlib.suppress(Error):
            page.goto(f"{server.url}/files/{file_id}")
        assert download.value.suggested_filename in ("x.svg", "x.html")
    page.goto(f"{server.url}/files/{ids[2]}")  # the polyglot: an image, nothing more
    assert "pwned" not in page.title()
    assert page.evaluate("document.contentType") == "image/jpeg"
    assert page.evaluate("document.scripts.length") == 0
