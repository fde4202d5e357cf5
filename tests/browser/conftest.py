"""Browser tests: pytest-playwright driving Debian's Chromium against a real gunicorn server.

Playwright's own browser download does not work offline, so Chromium is launched from
``/usr/bin/chromium`` (``apt-get install chromium``; ``make test`` does it). Tests skip with a
reason when it is missing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("WEBCHAT_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A webchat served by real gunicorn (gevent) on 127.0.0.1 with its own SQLite database."""

    def __init__(self, folder: Path, **env: str) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "WEBCHAT_INSTANCE_PATH": str(folder),
            "WEBCHAT_DATABASE_URL": f"sqlite:///{folder / 'webchat.sqlite3'}",
            "WEBCHAT_SECRET_KEY": "browser-test",
            "WEBCHAT_BIND": f"127.0.0.1:{self.port}",
            "WEBCHAT_ACCESS_LOG": str(folder / "access.log"),
            **env,
        }
        self.process: subprocess.Popen | None = None
        bin_dir = Path(sys.executable).parent
        subprocess.run(
            [str(bin_dir / "flask"), "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT, env=self.env, check=True, capture_output=True,
        )  # fmt: skip
        self.gunicorn = str(bin_dir / "gunicorn")

    def start(self) -> Server:
        """Start gunicorn and wait until it answers (10 s at most)."""
        with open(self.folder / "server.log", "ab") as log:
            self.process = subprocess.Popen(
                [self.gunicorn, "--config", "gunicorn.conf.py", "--no-control-socket", "wsgi:app"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/login", timeout=1)
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start: " + (self.folder / "server.log").read_text())

    def stop(self) -> None:
        """Stop gunicorn (SIGTERM, then SIGKILL after 10 s)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def server(tmp_path):
    """A running webchat whose demo model streams a word every 60 ms."""
    srv = Server(tmp_path, WEBCHAT_DEMO_DELAY_MS="60").start()
    yield srv
    srv.stop()
