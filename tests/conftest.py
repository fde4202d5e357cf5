"""Shared fixtures: an app on a throw-away database (SQLite, and PostgreSQL when it is up),
a signed-in client, and helpers to wait for background runs and read SSE streams.

Every test that takes ``app`` runs once per database: ``sqlite`` (a fresh file per test) and
``postgres`` (one throw-away database per test session, emptied after each test). Set
``WEBCHAT_TEST_DATABASES=sqlite`` to run on SQLite alone; the postgres runs are skipped with a
reason when the server at ``WEBCHAT_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``) does not answer.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from html import unescape
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from webchat import create_app
from webchat.extensions import db

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT.parent / "shared" / "fixtures"
PG_ADMIN_URL = os.environ.get(
    "WEBCHAT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DATABASES = os.environ.get("WEBCHAT_TEST_DATABASES", "sqlite,postgres").split(",")

BASE_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret",
    "REAPER_INTERVAL_MS": 0,  # tests reap explicitly
    "DEMO_DELAY_MS": 2,
    "STREAM_POLL_MS": 200,
    "TITLE_GENERATION": False,  # queued fake replies stay for the tests' own requests
    "RATELIMIT_ENABLED": False,  # tests/test_limits.py switches the abuse limits on
}


def _pg_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def _pg_available() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"))
        with engine.connect():
            pass
        engine.dispose()
        return None
    except Exception as exc:  # pragma: no cover - depends on the machine
        return f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {exc.__class__.__name__}"


def upgrade(app) -> None:
    """Apply every migration to the app's database (``flask db upgrade``)."""
    from flask_migrate import upgrade as alembic_upgrade

    with app.app_context():
        alembic_upgrade(directory=str(ROOT / "migrations"))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite file, copied for each test."""
    folder = tmp_path_factory.mktemp("template")
    path = folder / "template.sqlite3"
    app = create_app(
        {**BASE_CONFIG, "DATABASE_URL": f"sqlite:///{path}", "INSTANCE_PATH": str(folder)}
    )
    upgrade(app)
    with app.app_context():
        db.engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_database():
    """A throw-away PostgreSQL database for the session, migrated; dropped at the end."""
    reason = _pg_available()
    if reason:
        pytest.skip(reason)
    name = f"webchat_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = _pg_url(name)
    app = create_app(
        {**BASE_CONFIG, "DATABASE_URL": url, "INSTANCE_PATH": "/tmp/webchat-test-instance"}
    )
    upgrade(app)
    with app.app_context():
        db.engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate(app) -> None:
    with app.app_context():
        tables = ", ".join(t.name for t in db.metadata.sorted_tables)
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=[d for d in ("sqlite", "postgres")])
def database(request, tmp_path) -> str:
    """The URL of an empty migrated database of the kind in the param."""
    kind = request.param
    if kind not in DATABASES:
        pytest.skip(f"{kind} not in WEBCHAT_TEST_DATABASES")
    if kind == "sqlite":
        path = tmp_path / "webchat.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    return request.getfixturevalue("postgres_database")


@pytest.fixture
def make_app(database, tmp_path):
    """Build an app on the test's database with extra config; waits for its runs at the end."""
    apps = []

    def make(**config):
        app = create_app(
            {**BASE_CONFIG, "DATABASE_URL": database, "INSTANCE_PATH": str(tmp_path), **config}
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        wait_for_runs(app)
    if apps and database.startswith("postgres"):
        _truncate(apps[0])
    for app in apps:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def upstream():
    """A loopback fake of the LLM HTTP APIs replaying the replies a test queues
    (tests/fakes/upstream.py); modules that define their own keep theirs."""
    from .fakes.upstream import FakeUpstream

    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def ctx(app):
    """The app, with its app context pushed for the test (rolled back at the end)."""
    with app.app_context():
        yield app
        db.session.rollback()


def wait_for_runs(app, timeout: float = 30) -> None:
    """Join every run thread the app has started (they are daemon threads)."""
    deadline = time.monotonic() + timeout
    for thread in list(app.extensions.get("webchat.run_threads", [])):
        thread.join(max(0.0, deadline - time.monotonic()))
        assert not thread.is_alive(), "a run did not finish in time"


CSRF_RE = re.compile(r'"X-CSRFToken": "([^"]+)"')


def csrf_token(client, path: str = "/login") -> str:
    """The CSRF token of the client's session, read from a page as the browser would."""
    html = client.get(path).get_data(as_text=True)
    match = CSRF_RE.search(html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_up(client, email: str = "ada@example.com", password: str = "correct horse") -> None:
    """Create an account through the sign-up form; the client is signed in afterwards."""
    token = csrf_token(client, "/signup")
    response = client.post(
        "/signup",
        data={"email": email, "password": password, "confirm": password, "csrf_token": token},
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def sign_in(
    client, email: str = "ada@example.com", password: str = "correct horse", remember=False, **kw
):
    """POST the sign-in form (``remember``: "Keep me signed in"); returns the response."""
    data = {"email": email, "password": password, "csrf_token": csrf_token(client)}
    if remember:
        data["remember"] = "y"
    return client.post("/login", data=data, **kw)


@pytest.fixture
def user_client(client):
    """A client signed in as a new user (the first account, so an admin)."""
    sign_up(client)
    return client


def post(client, url: str, data: dict | None = None, htmx: bool = False, **kw):
    """POST with the session's CSRF token in the header, as htmx sends it."""
    headers = {"X-CSRFToken": csrf_token(client, "/"), **kw.pop("headers", {})}
    if htmx:
        headers["HX-Request"] = "true"
    return client.post(url, data=data or {}, headers=headers, **kw)


def parse_sse(body: str) -> list[dict]:
    """Parse text/event-stream ``body`` into ``[{"event", "id", "data"}]`` (comments dropped),
    per the HTML standard's event stream interpretation (see ``bench.stream_server.SseParser``,
    which reads a stream in pieces)."""
    from bench.stream_server import SseParser

    return SseParser().feed(body + "\n\n")


def fixture_path(*parts: str) -> Path:
    """A file of ../shared/fixtures; skips the test with a reason when the folder is absent."""
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared fixtures not found at {FIXTURES} (clone with ../shared beside it)")
    return path


STEP_RE = re.compile(
    r'<details class="tool tool-step[^"]*"[^>]*><summary>'
    r'<span class="tool-mark" aria-label="([\w ]+)">'
    r'.*?<code class="tool-name">(.*?)</code>(?: <span class="tool-arg">(.*?)</span>)?',
    re.S,
)


def steps_of(html: str) -> list[tuple[str, str, str]]:
    """The page's tool steps: (mark — ok, error or running —, tool name, key argument)."""
    return [(mark, unescape(name), unescape(arg)) for mark, name, arg in STEP_RE.findall(html)]
