"""Concurrent replies through real gunicorn (gevent), and the same streams from a bare endpoint.

For each level (100, 500, 1,000 by default) the client starts that many replies from the demo
model at ~20 tokens a second (``/long <words>``, ``DEMO_DELAY_MS=50``), each in a conversation of
its own, and follows each reply's SSE stream (``/m/<id>/stream``) to its ``done`` event. Then the
same number of streams of the same words at the same pace from ``/bench/bare`` (no database, no
notifier: see :mod:`bench.stream_wsgi`) on the same server.

It prints one row per level and kind: replies completed, characters lost and duplicated (the
text each client ends up with against the stored reply, and the event ids against each other),
the delay from a delta leaving the model to the client receiving it (p50 / p99; server and
client share this machine's clock), the most streams open at once, and the CPU seconds of the
server (gunicorn's processes, plus PostgreSQL's backends of the benchmark database) per stream.

Usage::

    .venv/bin/python -m bench.stream_concurrency [--db sqlite|postgres] [--levels 100,500,1000]
        [--words 200] [--workers N]

``--db postgres`` serves with ``--workers`` (default 2) gunicorn workers, notified over Redis
(127.0.0.1:6379); ``--db sqlite`` with one worker and in-process notifications (the embedded
default). Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import difflib
import html
import json
import re
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import create_engine, insert, select, text

from webchat.config import normalize_database_url
from webchat.models import Conversation, Message, User, new_id, utcnow
from webchat.providers.demo import DemoProvider

from .common import percentile, table
from .stream_server import REDIS_URL, Client, Gunicorn, SseParser, cpu_seconds, fresh_database

REPLY_RE = re.compile(r'id="m-([0-9a-f-]{36})"[^>]*sse-connect=')
SNAPSHOT_RE = re.compile(r'class="msg-body stream-text"[^>]*>(.*)</div>', re.S)


@dataclass
class Stream:
    """One client's view of one reply: what it received, and when."""

    key: str
    message_id: str | None = None
    text: str = ""
    end: int = 0  # offset the client's text reaches, per the event ids
    lost: int = 0
    duplicated: int = 0
    received: list[tuple[int, float]] = field(default_factory=list)  # (end offset, time)
    done: bool = False
    error: str | None = None

    def feed(self, event: dict, now: float) -> None:
        """Apply an event the way the htmx page does; check its id against the text so far."""
        name, data, eid = event["event"], event["data"], event["id"]
        if name == "done":
            self.done = True
            return
        offset = int(eid.rsplit(":", 1)[1]) if eid and not eid.endswith(":end") else None
        if name == "snapshot":
            match = SNAPSHOT_RE.search(data)
            self.text = html.unescape(match.group(1)) if match else ""
            self.end = len(self.text)
        elif name == "delta":
            piece = html.unescape(data)
            start = (offset if offset is not None else self.end + len(piece)) - len(piece)
            if start > self.end:
                self.lost += start - self.end
            elif start < self.end:
                self.duplicated += self.end - start
            self.text += piece
            self.end = start + len(piece)
        if offset is not None:
            self.received.append((offset, now))


async def http(url: str, method: str, path: str, headers: dict, body: bytes = b""):
    """One HTTP/1.1 request; returns (status, headers, reader, writer) with the body unread."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port, limit=2**20)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    response_headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        response_headers[name.strip().lower()] = value.strip()
    return status, response_headers, reader, writer


async def body_chunks(reader: asyncio.StreamReader, headers: dict):
    """The response body as it arrives, de-chunked."""
    if headers.get("transfer-encoding", "").lower() != "chunked":
        while data := await reader.read(65536):
            yield data
        return
    while True:
        size = int((await reader.readline()).split(b";")[0], 16)
        if size == 0:
            return
        yield await reader.readexactly(size)
        await reader.readexactly(2)


async def follow(url: str, path: str, headers: dict, stream: Stream, opened: list) -> None:
    """Read an SSE response into ``stream`` until ``done``."""
    status, response_headers, reader, writer = await http(url, "GET", path, headers)
    opened[0] += 1
    opened[1] = max(opened[1], opened[0])
    try:
        if status != 200:
            stream.error = f"stream answered {status}"
            return
        parser = SseParser()
        decoder = codecs.getincrementaldecoder("utf-8")()
        async for chunk in body_chunks(reader, response_headers):
            now = time.time()
            for event in parser.feed(decoder.decode(chunk)):
                stream.feed(event, now)
                if stream.done:
                    return
    finally:
        opened[0] -= 1
        writer.close()


async def reply(url: str, cookie: str, token: str, cid: str, words: int, s: Stream, opened):
    """Send ``/long <words>`` into conversation ``cid`` and follow the reply's stream."""
    headers = {"Cookie": cookie, "X-CSRFToken": token, "HX-Request": "true"}
    form = f"content=%2Flong+{words}".encode()
    status, response_headers, reader, writer = await http(
        url,
        "POST",
        f"/c/{cid}/messages",
        {**headers, "Content-Type": "application/x-www-form-urlencoded"},
        form,
    )
    page = b"".join([c async for c in body_chunks(reader, response_headers)]).decode()
    writer.close()
    match = REPLY_RE.search(page)
    if status != 200 or not match:
        s.error = f"send answered {status}"
        return
    s.message_id = match.group(1)
    await follow(url, f"/m/{s.message_id}/stream", {"Cookie": cookie}, s, opened)


async def run_level(url: str, starts: list, ramp: float) -> tuple[float, int]:
    """Start the coroutines ``starts`` spread over ``ramp`` seconds; returns (seconds, peak)."""
    opened = [0, 0]
    began = time.monotonic()

    async def later(i: int, make) -> None:
        await asyncio.sleep(ramp * i / len(starts))
        await make(opened)

    await asyncio.gather(*(later(i, make) for i, make in enumerate(starts)))
    return time.monotonic() - began, opened[1]


def generated(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """The server's stamps: key → [(end offset, time)] of each delta the model yielded."""
    stamps: dict[str, list[tuple[int, float]]] = {}
    for path in folder.glob("gen-*.tsv"):
        for line in path.read_text().splitlines():
            key, offset, t = line.split("\t")
            stamps.setdefault(key, []).append((int(offset), float(t)))
    return stamps


def delays(streams: list[Stream], stamps: dict) -> list[float]:
    """ms from each delta leaving the model to the first event that covered it."""
    out = []
    for s in streams:
        received = sorted(s.received)
        i = 0
        for offset, t in stamps.get(s.key, []):
            while i < len(received) and received[i][0] < offset:
                i += 1
            if i < len(received):
                out.append((received[i][1] - t) * 1000)
    return out


def check_text(stream: Stream, stored: str) -> tuple[int, int]:
    """(lost, duplicated) characters of the client's text against the stored reply, plus the
    gaps and overlaps its event ids showed."""
    lost, duplicated = stream.lost, stream.duplicated
    if stream.text != stored:
        for op, i1, i2, j1, j2 in difflib.SequenceMatcher(
            None, stored, stream.text, autojunk=False
        ).get_opcodes():
            if op in ("delete", "replace"):
                lost += i2 - i1
            if op in ("insert", "replace"):
                duplicated += j2 - j1
    return lost, duplicated


def backend_pids(engine, url: str) -> list[int]:
    """PostgreSQL backends serving the benchmark database."""
    if not url.startswith("postgres"):
        return []
    name = url.rsplit("/", 1)[1]
    with engine.connect() as conn:
        return list(
            conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :n"), {"n": name})
            .scalars()
            .all()
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--levels", default="100,500,1000")
    parser.add_argument("--words", type=int, default=200, help="words per reply")
    parser.add_argument("--delay-ms", type=int, default=50, help="ms between two words")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument(
        "--pool", type=int, default=20, help="database connections per worker (pool_size)"
    )
    args = parser.parse_args()
    levels = [int(n) for n in args.levels.split(",")]
    workers = args.workers or (2 if args.db == "postgres" else 1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, fresh_database(args.db, Path(tmp)) as url:
        folder = Path(tmp)
        env = {
            "WEBCHAT_DATABASE_URL": url,
            "WEBCHAT_INSTANCE_PATH": str(folder),
            "WEBCHAT_SECRET_KEY": "bench",
            "WEBCHAT_DEMO_DELAY_MS": str(args.delay_ms),
            "WEBCHAT_TOOLS_ENABLED": "false",
            "WEBCHAT_ACCESS_LOG": "/dev/null",
            "WEBCHAT_SQLALCHEMY_ENGINE_OPTIONS": json.dumps(
                {"pool_size": args.pool, "max_overflow": 10}
            ),
        }
        if args.db == "postgres":
            env["WEBCHAT_REDIS_URL"] = REDIS_URL
        engine = create_engine(normalize_database_url(url))
        with Gunicorn(folder, env, workers=workers, app="bench.stream_wsgi:app") as server:
            person = Client(server.url).sign_up()
            cookie = "; ".join(f"{k}={v}" for k, v in person.http.cookies.items())
            token = person.csrf()
            with engine.begin() as conn:
                user_id = conn.execute(select(User.id)).scalar_one()
            for level in levels:
                for kind in ("webchat", "bare"):
                    rows.append(
                        run_kind(kind, level, args, server, engine, url, user_id, cookie, token)
                        + [workers]
                    )
                    print(table(HEADER, rows[-1:]).splitlines()[-1], flush=True)
            errors = [line for line in server.log.read_text().splitlines() if "Error" in line]
            if errors:
                print(f"{len(errors)} error lines in the server's log, the last:", errors[-5:])
        engine.dispose()
    print(f"\n{args.db}, {workers} gunicorn worker(s) (gevent), {args.words} words a reply,")
    print(f"{args.delay_ms} ms between words (~{1000 / args.delay_ms:.0f} tokens/s)\n")
    print(table(HEADER, rows))
    ratios = [
        [web[1], f"{float(web[9]) / max(float(bare[9]), 0.5):.1f}", f"{web[6]} vs {bare[6]}"]
        for web, bare in zip(rows[::2], rows[1::2], strict=True)
    ]
    print("\nOverhead of webchat over the bare endpoint on the same server\n")
    print(table(["streams", "server CPU ratio", "delay p50 ms (webchat vs bare)"], ratios))
    bad = [r for r in rows if r[2] != str(r[1]) or r[3] != r[1] or r[4] or r[5]]
    if bad:
        print("\nNOT EVERY STREAM COMPLETED EXACTLY:", bad)


HEADER = [
    "kind",
    "streams",
    "replies complete",
    "clients exact",
    "chars lost",
    "chars duplicated",
    "delay p50 ms",
    "delay p99 ms",
    "peak open",
    "server CPU ms / stream",
    "wall s",
    "workers",
]


def run_kind(kind, level, args, server, engine, url, user_id, cookie, token) -> list:
    """One row: ``level`` concurrent streams of ``kind`` (webchat or bare)."""
    tag = uuid.uuid4().hex[:6]
    streams = [Stream(key=f"bench-{tag}-{k}") for k in range(level)]
    if kind == "webchat":
        now = utcnow()
        rows = [
            {"id": new_id(), "user_id": user_id, "title": s.key, "model": "demo/echo"}
            | {"system_prompt": s.key, "metadata": {}, "pinned": False}
            | {"created_at": now, "updated_at": now}
            for s in streams
        ]
        with engine.begin() as conn:
            conn.execute(insert(Conversation.__table__), rows)
        starts = [
            (lambda opened, s=s, cid=row["id"]: reply(
                server.url, cookie, token, cid.hex, args.words, s, opened
            ))
            for s, row in zip(streams, rows, strict=True)
        ]  # fmt: skip
    else:
        starts = [
            (lambda opened, s=s: follow(
                server.url, f"/bench/bare?key={s.key}&words={args.words}", {}, s, opened
            ))
            for s in streams
        ]  # fmt: skip
    pids = server.worker_pids() + [server.process.pid]
    db_pids = backend_pids(engine, url)
    cpu_before = cpu_seconds(pids) + cpu_seconds(db_pids)
    seconds, peak = asyncio.run(run_level(server.url, starts, ramp=min(5.0, level / 100)))
    time.sleep(0.5)  # the server's stamp files are written as each reply ends
    db_pids = sorted(set(db_pids) | set(backend_pids(engine, url)))
    cpu = cpu_seconds(pids) + cpu_seconds(db_pids) - cpu_before
    stamps = generated(Path(server.env["WEBCHAT_INSTANCE_PATH"]))
    expected = DemoProvider().reply_text(f"/long {args.words}")
    stored: dict[str, tuple[str, str]] = {}  # message id → (status, content)
    if kind == "webchat":
        ids = [uuid.UUID(s.message_id) for s in streams if s.message_id]
        with engine.connect() as conn:
            for mid, status, content in conn.execute(
                select(Message.id, Message.status, Message.content).where(Message.id.in_(ids))
            ):
                stored[str(mid)] = (status, content)
    lost = duplicated = exact = 0
    endings: dict[str, int] = {}
    for s in streams:
        status, truth = (
            stored.get(s.message_id or "", ("missing", ""))
            if kind == "webchat"
            else (
                "complete",
                expected,
            )
        )
        endings[status] = endings.get(status, 0) + 1
        got = check_text(s, truth)
        lost += got[0]
        duplicated += got[1]
        exact += s.done and s.text == truth
        if s.error:
            endings[s.error] = endings.get(s.error, 0) + 1
    whole = endings.get("complete", 0)
    lag = delays(streams, stamps)
    others = ", ".join(f"{n} {k}" for k, n in sorted(endings.items()) if k != "complete")
    return [
        kind,
        level,
        f"{whole}" + (f" ({others})" if others else ""),
        exact,
        lost,
        duplicated,
        f"{percentile(lag, 50):.0f}" if lag else "-",
        f"{percentile(lag, 99):.0f}" if lag else "-",
        peak,
        f"{cpu * 1000 / level:.0f}",
        f"{seconds:.1f}",
    ]


if __name__ == "__main__":
    main()
