"""Files in messages: upload throughput, and opening a conversation with 1,000 images.

- Uploads: ``POST /api/v1/files`` through the Flask test client (no network), one user, for a
  photo-like 1600×1200 JPEG (noise: the re-encode's worst case), a 1024×768 PNG screenshot
  (flat colours), a 1 MB text file and a 20-page PDF; each upload is new bytes (so stored, not
  deduplicated). Uploads per second and MB/s of the file as sent, per storage backend.
- Opening: ``GET /c/<id>`` of a conversation of 1,000 user messages each with its own image
  (and replies), against the same conversation without images: server time (median / p90 in ms)
  and the SQL statements one request runs. The page holds ``PAGE_SIZE`` messages and their
  thumbnails load lazily from the browser, so the images beyond the window cost nothing.

Usage::

    .venv/bin/python -m bench.files_bench [--db sqlite,postgres] [--uploads 20] [--samples 30]
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image
from sqlalchemy import event

from webchat.api import tokens
from webchat.auth import services as accounts
from webchat.conversations import services as conversations
from webchat.extensions import db
from webchat.files import services as files
from webchat.models import Role, Status, User

from .common import bench_app, p90, table
from .history import signed_in
from .stream_server import fresh_database


def photo(seed: int) -> bytes:
    rng = random.Random(seed)
    image = Image.frombytes("RGB", (1600, 1200), rng.randbytes(1600 * 1200 * 3))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def screenshot(seed: int) -> bytes:
    image = Image.new("RGB", (1024, 768), (250, 250, 250))
    for i in range(40):
        image.paste((seed * 7 % 255, i * 6, 120), (20, 18 * i + 4, 1000, 18 * i + 14))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def text_file(seed: int) -> bytes:
    line = f"{seed} the quick brown fox jumps over the lazy dog 0123456789\n"
    return (line * (1_000_000 // len(line))).encode()


def pdf(seed: int) -> bytes:
    from pypdf import PdfReader, PdfWriter

    from tests.files_corpus import pdf as one_page

    writer = PdfWriter()
    for page in range(20):
        text = f"({seed} page {page} lorem ipsum dolor sit amet) Tj " * 40
        reader = PdfReader(io.BytesIO(one_page(f"BT /F1 9 Tf 20 760 Td {text} ET".encode())))
        writer.add_page(reader.pages[0])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


KINDS = {"JPEG photo 1600×1200": photo, "PNG screenshot 1024×768": screenshot,
         "text 1 MB": text_file, "PDF 20 pages": pdf}  # fmt: skip


def uploads(kind: str, backend: str, count: int) -> list[list[str]]:
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="webchat-bench-files-") as folder,
        fresh_database(kind, Path(folder)) as url,
    ):
        app = bench_app(url, folder, FILES_BACKEND=backend, FILES_MAX_BYTES=50_000_000,
                        RATELIMIT_ENABLED=False)  # fmt: skip
        with app.app_context():
            user = accounts.create_user("bench@example.com", "benchmark")
            _row, token = tokens.create_token(user, "bench")
            db.session.commit()
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        for name, make in KINDS.items():
            bodies = [make(i) for i in range(count)]
            started = time.perf_counter()
            for i, body in enumerate(bodies):
                response = client.post(
                    "/api/v1/files", headers=headers, content_type="multipart/form-data",
                    data={"file": (io.BytesIO(body), f"f{i}")},
                )  # fmt: skip
                assert response.status_code == 201, response.get_data(as_text=True)
            elapsed = time.perf_counter() - started
            total = sum(len(b) for b in bodies)
            rate = f"{total / elapsed / 1e6:.2f}"
            size = f"{total / count / 1e3:,.0f} KB"
            rows.append([f"{kind} · {backend}", name, size, f"{count / elapsed:.1f}", rate])
    return rows


def seed_conversation(user: User, count: int, images: bool) -> str:
    """A conversation of ``count`` user messages (each with a new image when ``images``) and
    replies, written through the services' own helpers."""
    conversation = conversations.create_conversation(user, title="bench")
    parent = None
    for i in range(count):
        attached = []
        if images:
            png = Image.new("RGB", (64, 48), (i % 256, (i // 256) % 256, 99))
            out = io.BytesIO()
            png.save(out, format="PNG")
            attached = [files.upload(user, f"shot-{i}.png", out.getvalue())]
        message = conversations._new_message(conversation, parent, Role.USER, f"look {i}")
        files.attach(message, attached)
        parent = conversations._new_message(
            conversation, message, Role.ASSISTANT, f"I see picture {i}.",
            content_html=f"<p>I see picture {i}.</p>",
        )  # fmt: skip
        assert parent.status == Status.COMPLETE
        if i % 200 == 199:
            db.session.commit()
    db.session.commit()
    return str(conversation.id)


def opening(kind: str, count: int, samples: int) -> list[list[str]]:
    with (
        tempfile.TemporaryDirectory(prefix="webchat-bench-files-") as folder,
        fresh_database(kind, Path(folder)) as url,
    ):
        app = bench_app(url, folder, RATELIMIT_ENABLED=False)
        with app.app_context():
            user = accounts.create_user("bench@example.com", "benchmark")
            db.session.commit()
            plain = seed_conversation(user, count, images=False)
            pictures = seed_conversation(user, count, images=True)
            user_id = user.id
            engine = db.engine
        client = signed_in(app, user_id)
        rows = []
        for name, cid in (("without images", plain), (f"with {count:,} images", pictures)):
            times, statements = [], []
            for round_ in range(samples + 3):
                seen = [0]

                def count_statement(*_args, seen=seen):
                    seen[0] += 1

                event.listen(engine, "before_cursor_execute", count_statement)
                started = time.perf_counter()
                response = client.get(f"/c/{cid}")
                elapsed = time.perf_counter() - started
                event.remove(engine, "before_cursor_execute", count_statement)
                assert response.status_code == 200
                if round_ >= 3:
                    times.append(elapsed * 1000)
                    statements.append(seen[0])
            thumbnails = response.get_data(as_text=True).count('loading="lazy"')
            rows.append([kind, name, f"{statistics.median(times):.1f} / {p90(times):.1f}",
                         str(statistics.median(statements)), str(thumbnails)])  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres, or both")
    parser.add_argument("--uploads", type=int, default=20, help="uploads of each kind")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args()
    kinds = args.db.split(",")
    rows = [
        r for kind in kinds for b in ("folder", "database") for r in uploads(kind, b, args.uploads)
    ]
    print("\n### Uploads (POST /api/v1/files, in process)\n")
    print(table(["database · backend", "file", "size", "uploads/s", "MB/s"], rows))
    rows = [r for kind in kinds for r in opening(kind, args.images, args.samples)]
    print(f"\n### Opening a conversation of {args.images:,} messages (GET /c/<id>)\n")
    print(
        table(
            ["database", "conversation", "ms median / p90", "statements", "thumbnails on the page"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
