"""The web worker's side of the MCP helper process (:mod:`webchat.mcp.broker`).

One helper per worker process, started on first use and again when it has died. Requests are JSON
lines written to its stdin; a reader thread hands each answer to the thread (a greenlet under
gevent, where the pipes are cooperative) that waits for it. Nothing of the SDK's asyncio runs in
the worker, so the gevent worker's loop is never blocked by it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from typing import IO, Any, cast

from flask import Flask

_KEY = "webchat.mcp.broker"
_lock = threading.Lock()


class BrokerClient:
    """A running helper process and the requests waiting for its answers."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None
        self.waiting: dict[int, tuple[threading.Event, dict[str, Any]]] = {}
        self.next_id = 0

    def _start(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "webchat.mcp.broker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C to the server does not reach it first
        )
        assert process.stdout is not None
        threading.Thread(
            target=self._read, args=(process, process.stdout), name="webchat-mcp", daemon=True
        ).start()
        return process

    def _read(self, process: subprocess.Popen[bytes], stdout: IO[bytes]) -> None:
        for line in stdout:
            try:
                answer = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                waiter = self.waiting.pop(answer.get("id"), None)
            if waiter is not None:
                waiter[1].update(answer)
                waiter[0].set()
        with self.lock:  # the helper ended: fail what still waits on it
            stranded = [w for i, w in self.waiting.items()]
            self.waiting.clear()
            if self.process is process:
                self.process = None
        for event, box in stranded:
            box.update(ok=False, error="the MCP helper process stopped")
            event.set()

    def request(self, payload: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send ``payload`` (see :mod:`.broker`) and wait for its answer at most ``timeout_s``
        seconds plus a margin; a helper that does not answer gives ``{"ok": False, "error"}``."""
        event, box = threading.Event(), cast(dict[str, Any], {})
        with self.lock:
            if self.process is None or self.process.poll() is not None:
                self.process = self._start()
            self.next_id += 1
            request_id = self.next_id
            self.waiting[request_id] = (event, box)
            stdin = self.process.stdin
        line = json.dumps({**payload, "id": request_id, "timeout_s": timeout_s}) + "\n"
        assert stdin is not None
        try:
            stdin.write(line.encode())
            stdin.flush()
        except OSError as exc:
            with self.lock:
                self.waiting.pop(request_id, None)
            return {"ok": False, "error": f"the MCP helper process is gone ({exc})"}
        if not event.wait(timeout_s + 5):
            with self.lock:
                self.waiting.pop(request_id, None)
            return {"ok": False, "error": f"no answer within {timeout_s:g} s"}
        return box

    def close(self) -> None:
        """End the helper (its servers end with it)."""
        with self.lock:
            process, self.process = self.process, None
        if process is not None:
            process.kill()
            process.wait()


def broker(app: Flask) -> BrokerClient:
    """This process's helper client for ``app`` (a forked worker makes its own)."""
    with _lock:
        client = app.extensions.get(_KEY)
        if client is None or client.pid != os.getpid():
            client = app.extensions[_KEY] = BrokerClient()
        return client
