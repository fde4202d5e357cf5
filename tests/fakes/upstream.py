"""A loopback fake of an LLM HTTP API that replays recorded responses byte for byte.

:class:`FakeUpstream` is a small threaded HTTP/1.1 server on ``127.0.0.1`` and an ephemeral port.
Each ``POST`` takes the next queued :class:`Reply` and writes it with chunked transfer encoding,
one chunk per recorded SSE event, as the real APIs do; a reply can also cut the connection after
some chunks, stall, or answer with an HTTP error. ``GET …/models`` answers with the model names
given to :meth:`FakeUpstream.serve_models`. Every request is recorded (path, headers, JSON body).

:func:`cassette_replies` reads the responses of a VCR cassette (the YAML files of
``../shared/fixtures``), :func:`chunk_file_reply` a file of one JSON chunk per line.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml


@dataclass
class Reply:
    """One response: ``status``, ``headers``, body ``chunks`` (bytes, written and flushed one by
    one, ``pause`` seconds before each). ``cut_after`` = number of chunks after which the
    connection is dropped without the terminating chunk; ``stall`` = seconds to hold the
    connection silent (before the headers when ``stall_before_headers``, else after
    ``cut_after`` or all chunks)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/event-stream"})
    chunks: list[bytes] = field(default_factory=list)
    cut_after: int | None = None
    stall: float = 0.0
    stall_before_headers: bool = False
    pause: float = 0.0

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def rechunked(self, size: int) -> Reply:
        """This reply with its body cut into ``size``-byte pieces, as a network may deliver it:
        across event boundaries, lines and multi-byte UTF-8 characters."""
        body = self.body
        pieces = [body[i : i + size] for i in range(0, len(body), size)]
        return Reply(self.status, dict(self.headers), pieces, pause=self.pause)


def sse_events(text: str) -> list[bytes]:
    """``text`` split after each blank line (one SSE event per chunk), as bytes."""
    parts = text.split("\n\n")
    chunks = [p + "\n\n" for p in parts[:-1] if p.strip()]
    if parts[-1].strip():
        chunks.append(parts[-1])
    return [c.encode() for c in chunks]


def cassette(path: Path) -> list[dict[str, Any]]:
    """The interactions of a VCR cassette: ``[{"request": {...}, "response": {...}}]``."""
    return yaml.safe_load(path.read_text())["interactions"]


def response_body(response: dict[str, Any]) -> str:
    """The recorded body of a cassette's response, in any of the three layouts of
    ``../shared/fixtures``: vcrpy (``body.string``), pydantic-ai's vcrpy (``body.content``) and
    go-vcr v2 (``body`` as text)."""
    body = response["body"]
    if isinstance(body, str):
        return body
    return body["string"] if "string" in body else body["content"]


def request_json(request: dict[str, Any]) -> Any:
    """The recorded JSON body of a cassette's request (text, or pydantic-ai's parsed
    ``{"type": "json", "content"}``)."""
    body = request["body"]
    if isinstance(body, dict):
        return body.get("content", body)
    return json.loads(body)


def cassette_replies(path: Path) -> list[Reply]:
    """A :class:`Reply` per recorded response of the cassette, body split into its events."""
    replies = []
    for interaction in cassette(path):
        response = interaction["response"]
        status = response["status"]
        code = status["code"] if isinstance(status, dict) else response.get("code", status)
        headers = {}
        for key, value in (response.get("headers") or {}).items():
            if key.lower() == "content-type":
                headers["Content-Type"] = value[0] if isinstance(value, list) else value
        replies.append(
            Reply(status=int(code), headers=headers, chunks=sse_events(response_body(response)))
        )
    return replies


def chunk_file_reply(path: Path) -> Reply:
    """A chat-completions stream from a file of one ``chat.completion.chunk`` JSON per line:
    each line becomes a ``data:`` event, then ``data: [DONE]``."""
    lines = [line for line in path.read_text().split("\n") if line.strip()]
    return Reply(chunks=[f"data: {line}\n\n".encode() for line in lines] + [b"data: [DONE]\n\n"])


def json_reply(status: int, body: Any) -> Reply:
    """A plain JSON answer (an HTTP error, say)."""
    return Reply(
        status=status,
        headers={"Content-Type": "application/json"},
        chunks=[json.dumps(body).encode()],
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        fake = self.server.fake
        fake.record(self, None)
        if self.path.rstrip("/").endswith("/models"):
            data = [
                {
                    "id": m,
                    "object": "model",
                    "type": "model",
                    "created": 0,
                    "owned_by": "fake",
                    "display_name": m,
                    "created_at": "2025-01-01T00:00:00Z",
                }
                for m in fake.models
            ]
            body = {
                "object": "list",
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
            self._write(json_reply(200, body))
        else:
            self._write(json_reply(404, {"error": {"message": "not found"}}))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        fake = self.server.fake
        fake.record(self, json.loads(raw) if raw else None)
        reply = fake.next_reply()
        if reply is None:
            self._write(json_reply(500, {"error": {"message": "the fake has no reply queued"}}))
        else:
            self._write(reply)

    def _write(self, reply: Reply) -> None:
        stopping = self.server.fake.stopping
        if reply.stall_before_headers:
            stopping.wait(reply.stall)
            self.close_connection = True
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i, chunk in enumerate(reply.chunks):
            if reply.cut_after is not None and i >= reply.cut_after:
                break
            if reply.pause:
                stopping.wait(reply.pause)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        if reply.stall:
            stopping.wait(reply.stall)
        if reply.cut_after is not None or reply.stall:
            self.close_connection = True  # no terminating chunk: the body is incomplete
            return
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeUpstream

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up (time-out tests) is expected


class FakeUpstream:
    """The server; use as a context manager. ``url`` is ``http://127.0.0.1:<port>``."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.requests: list[dict[str, Any]] = []
        self.models: list[str] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def queue(self, *replies: Reply) -> None:
        """Queue replies for the next POSTs, in order."""
        with self._lock:
            self.replies.extend(replies)

    def serve_models(self, *names: str) -> None:
        """Answer ``GET …/models`` with these model ids."""
        self.models = list(names)

    def next_reply(self) -> Reply | None:
        with self._lock:
            return self.replies.popleft() if self.replies else None

    def record(self, handler: BaseHTTPRequestHandler, body: Any) -> None:
        with self._lock:
            self.requests.append(
                {
                    "method": handler.command,
                    "path": handler.path,
                    "headers": {k.lower(): v for k, v in handler.headers.items()},
                    "json": body,
                }
            )

    def posts(self) -> list[dict[str, Any]]:
        """The recorded POST requests, oldest first."""
        with self._lock:
            return [r for r in self.requests if r["method"] == "POST"]

    def __enter__(self) -> FakeUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
