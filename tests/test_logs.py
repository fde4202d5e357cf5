"""Request ids on every response; JSON log lines with request and user ids, and no content."""

from __future__ import annotations

import json
import logging

import pytest

from .conftest import post, sign_up, wait_for_runs

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


@pytest.fixture
def restore_logging():
    logger = logging.getLogger("webchat")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate


def test_every_response_carries_a_request_id(client):
    first, second = client.get("/login"), client.get("/login")
    assert len(first.headers["X-Request-ID"]) == 32
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]
    given = client.get("/login", headers={"X-Request-ID": "proxy-id.42"})
    assert given.headers["X-Request-ID"] == "proxy-id.42"
    hostile = client.get("/login", headers={"X-Request-ID": 'a" injected=1'})
    assert hostile.headers["X-Request-ID"] != 'a" injected=1'


def test_json_lines_have_ids_and_no_content(make_app, capsys, restore_logging):
    app = make_app(LOG_FORMAT="json")
    client = app.test_client()
    sign_up(client)
    with app.test_request_context("/", headers={"X-Request-ID": "req-1"}):
        app.preprocess_request()
        from flask_login import login_user

        from webchat.auth.services import find_user

        login_user(find_user("ada@example.com"))
        logging.getLogger("webchat.test").warning("hello %s", "world")
    post(client, "/c", {"content": "/fail top-secret-words"})
    wait_for_runs(app)
    with app.app_context():
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("webchat.test").exception("failed")
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    hello = next(line for line in lines if line["message"] == "hello world")
    assert hello["request_id"] == "req-1" and hello["level"] == "warning"
    assert hello["user_id"] == 1
    assert hello["logger"] == "webchat.test" and hello["time"].endswith("+00:00")
    failed = next(line for line in lines if line["message"] == "failed")
    assert "ValueError: boom" in failed["exception"] and failed["request_id"] is None
    assert "top-secret-words" not in err
