"""Real webchat servers for the streaming benchmarks and the process tests.

:class:`Gunicorn` serves webchat (or another WSGI app) with ``gunicorn.conf.py`` (gevent workers)
on 127.0.0.1 and a free port; :class:`Client` is a signed-in browser without JavaScript (a
``requests`` session that sends the CSRF header as htmx does); :class:`SseParser` turns a
text/event-stream read in pieces into events, per the "Server-sent events" section of the HTML
standard. Everything here talks to 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
REDIS_URL = "redis://127.0.0.1:6379/0"
CSRF_RE = re.compile(r'"X-CSRFToken": "([^"]+)"')
REPLY_RE = re.compile(r'id="m-([0-9a-f-]{36})"[^>]*sse-connect=')


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_reason(url: str = REDIS_URL) -> str | None:
    """None when Redis answers at ``url``, else why not (for a skip message)."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        return None
    except Exception as exc:
        return f"Redis at {url} is not reachable: {exc.__class__.__name__}"


def migrate(env: dict[str, str]) -> None:
    """``flask db upgrade`` on the database ``env`` names (``WEBCHAT_DATABASE_URL``)."""
    subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )


class Gunicorn:
    """gunicorn serving ``app`` with ``gunicorn.conf.py`` on 127.0.0.1:<free port>.

    ``env`` is added to this process's environment (``WEBCHAT_*`` settings). The server's output
    goes to ``<folder>/gunicorn-<port>.log``. Use as a context manager, or :meth:`start` and
    :meth:`stop`. Raises ``RuntimeError`` when it does not answer within ``timeout`` seconds.
    """

    def __init__(
        self,
        folder: Path,
        env: dict[str, str],
        *,
        workers: int = 1,
        app: str = "wsgi:app",
        timeout: float = 30,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(folder) / f"gunicorn-{self.port}.log"
        self.env = {
            **os.environ,
            "WEBCHAT_ACCESS_LOG": str(Path(folder) / f"access-{self.port}.log"),
            "WEBCHAT_RATELIMIT_ENABLED": "false",  # load from one client IP; env may turn it on
            **env,
        }
        self.args = [
            str(BIN / "gunicorn"),
            "--config",
            str(ROOT / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
            "--no-control-socket",
            app,
        ]
        self.timeout = timeout
        self.process: subprocess.Popen | None = None

    def start(self) -> Gunicorn:
        """Start the arbiter and wait until a request is answered."""
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        """Wait until the server answers ``GET /login`` (after a start, or a worker restart)."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                break
            try:
                requests.get(self.url + "/login", timeout=2)
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(f"gunicorn at {self.url} did not answer:\n{self.log.read_text()}")

    def worker_pids(self) -> list[int]:
        """The pids of the arbiter's workers now."""
        assert self.process is not None
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [int(c) for c in children]

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM the arbiter (graceful), then SIGKILL it and its workers after ``timeout`` s."""
        if self.process is None or self.process.poll() is not None:
            return
        workers = self.worker_pids()
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            for pid in [self.process.pid, *workers]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SseParser:
    """Incremental text/event-stream parser: :meth:`feed` text as it arrives, get whole events
    (``{"event", "id", "data"}``, comments dropped) back."""

    def __init__(self) -> None:
        self.buffer = ""

    def feed(self, text: str) -> list[dict]:
        self.buffer += text.replace("\r\n", "\n")
        *blocks, self.buffer = self.buffer.split("\n\n")
        events = []
        for block in blocks:
            event: dict = {"event": "message", "id": None, "data": None}
            for line in block.split("\n"):
                if not line or line.startswith(":"):
                    continue
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "data":
                    event["data"] = value if event["data"] is None else event["data"] + "\n" + value
                elif name in ("event", "id"):
                    event[name] = value
            if event["data"] is not None:
                events.append(event)
        return events


class Client:
    """A signed-in person without JavaScript: form posts with the CSRF header htmx sends."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.token: str | None = None

    def sign_up(self, email: str = "ada@example.com", password: str = "correct horse") -> Client:
        """Create an account through the sign-up form (signed in afterwards)."""
        page = self.http.get(self.url + "/signup", timeout=10).text
        token = CSRF_RE.search(page)
        assert token, "no CSRF token on /signup"
        response = self.http.post(
            self.url + "/signup",
            data={"email": email, "password": password, "confirm": password},
            headers={"X-CSRFToken": token.group(1)},
            allow_redirects=False,
            timeout=10,
        )
        assert response.status_code == 302, response.text
        return self

    def use_session_of(self, other: Client, url: str) -> Client:
        """This client as the same signed-in person on another server (shared secret key)."""
        self.http.cookies.update(other.http.cookies)
        self.token = other.token
        self.url = url
        return self

    def csrf(self) -> str:
        if self.token is None:
            match = CSRF_RE.search(self.http.get(self.url + "/", timeout=10).text)
            assert match, "no CSRF token on /"
            self.token = match.group(1)
        return self.token

    def post(self, path: str, data: dict | None = None, htmx: bool = True) -> requests.Response:
        headers = {"X-CSRFToken": self.csrf()}
        if htmx:
            headers["HX-Request"] = "true"
        return self.http.post(
            self.url + path, data=data or {}, headers=headers, allow_redirects=False, timeout=30
        )

    def start_conversation(self, content: str) -> tuple[str, str]:
        """A new conversation with ``content``; returns (conversation id, streaming reply id)."""
        response = self.post("/c", {"content": content}, htmx=False)
        assert response.status_code == 303, response.text
        cid = response.headers["Location"].rsplit("/", 1)[1]
        match = REPLY_RE.search(self.http.get(f"{self.url}/c/{cid}", timeout=10).text)
        assert match, "the new reply is not streaming"
        return cid, match.group(1)

    def send(self, cid: str, content: str) -> str:
        """Send ``content`` into conversation ``cid``; returns the new reply's id."""
        response = self.post(f"/c/{cid}/messages", {"content": content})
        assert response.status_code == 200, response.text
        match = REPLY_RE.search(response.text)
        assert match, response.text
        return match.group(1)

    def stream(
        self, message_id: str, last_event_id: str | None = None
    ) -> Iterator[tuple[float, dict]]:
        """The reply's SSE events as ``(time.time() received, event)``, until ``done`` or the
        caller stops iterating (which closes the connection)."""
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        parser = SseParser()
        with self.http.get(
            f"{self.url}/m/{message_id}/stream", headers=headers, stream=True, timeout=60
        ) as response:
            assert response.status_code == 200
            assert response.headers["Content-Type"].startswith("text/event-stream")
            for chunk in response.iter_content(chunk_size=None, decode_unicode=True):
                now = time.time()
                for event in parser.feed(chunk):
                    yield now, event
                    if event["event"] == "done":
                        return


PG_ADMIN_URL = os.environ.get(
    "WEBCHAT_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@contextlib.contextmanager
def fresh_database(kind: str, folder: Path, migrated: bool = True) -> Iterator[str]:
    """The URL of a new, migrated (or, with ``migrated=False``, empty) database: a SQLite file
    in ``folder`` (``kind="sqlite"``) or a throw-away PostgreSQL database on
    ``WEBCHAT_BENCH_POSTGRES_URL`` (``kind="postgres"``), dropped on exit."""
    if kind == "sqlite":
        url = f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
        if migrated:
            migrate({"WEBCHAT_DATABASE_URL": url, "WEBCHAT_INSTANCE_PATH": str(folder)})
        yield url
        return
    from sqlalchemy import create_engine, text

    name = f"webchat_bench_{os.getpid()}_{time.time_ns()}"
    admin = create_engine(
        PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        if migrated:
            migrate({"WEBCHAT_DATABASE_URL": url, "WEBCHAT_INSTANCE_PATH": str(folder)})
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes ``pids`` have used so far (gone ones count 0)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / ticks
