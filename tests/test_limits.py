"""Abuse limits (webchat.limits): sign-in per account and per IP, a locked window the right
password does not get through, sign-up, sends, the API per token, imports; a readable 429 with
Retry-After; Redis storage shared by two gunicorn workers."""

from __future__ import annotations

import pytest

from .conftest import csrf_token, post, sign_in, sign_up, wait_for_runs

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


def test_ten_wrong_passwords_lock_sign_in_even_for_the_right_one(make_app):
    app = make_app(RATELIMIT_ENABLED=True, LOGIN_LIMIT="10 per 15 minutes")
    client = app.test_client()
    sign_up(client, "a@example.com", "correct horse")
    post(client, "/logout")
    for _ in range(10):
        assert sign_in(client, "a@example.com", "wrong horse").status_code == 400
    locked = sign_in(client, "a@example.com", "correct horse")
    assert locked.status_code == 429
    body = locked.get_data(as_text=True)
    assert "Too many failed sign-ins for this account" in body and "Try again in" in body
    assert 0 < int(locked.headers["Retry-After"]) <= 15 * 60
    assert locked.headers["Content-Security-Policy"]  # the error page has the headers too
    # another account from the same client is not locked by this one
    sign_up(app.test_client(), "b@example.com", "correct horse")
    assert sign_in(client, "b@example.com", "correct horse").status_code == 302


def test_successful_sign_ins_do_not_count(make_app):
    app = make_app(RATELIMIT_ENABLED=True, LOGIN_LIMIT="3 per 15 minutes")
    client = app.test_client()
    sign_up(client, "a@example.com", "correct horse")
    for _ in range(6):
        post(client, "/logout")
        assert sign_in(client, "a@example.com", "correct horse").status_code == 302


def test_sign_in_per_ip_spans_accounts(make_app):
    app = make_app(RATELIMIT_ENABLED=True, LOGIN_IP_LIMIT="5 per hour", LOGIN_LIMIT="100 per hour")
    sign_up(app.test_client())  # past the first run, /login is the sign-in form
    client = app.test_client()
    for i in range(5):
        assert sign_in(client, f"u{i}@example.com", "whatever12").status_code == 400
    assert sign_in(client, "u9@example.com", "whatever12").status_code == 429
    other_ip = sign_in(
        client, "u9@example.com", "whatever12", environ_base={"REMOTE_ADDR": "10.0.0.9"}
    )
    assert other_ip.status_code == 400


def test_signup_limit(make_app):
    app = make_app(RATELIMIT_ENABLED=True, SIGNUP_LIMIT="2 per hour")
    for i in range(2):
        sign_up(app.test_client(), f"s{i}@example.com")
    client = app.test_client()
    token = csrf_token(client, "/signup")
    data = {"email": "s9@example.com", "password": "x" * 12, "confirm": "x" * 12}
    assert client.post("/signup", data={**data, "csrf_token": token}).status_code == 429


def test_sends_per_user_per_minute(make_app):
    app = make_app(RATELIMIT_ENABLED=True, SEND_LIMIT="2 per minute")
    client = app.test_client()
    sign_up(client)
    assert post(client, "/c", {"content": "one"}).status_code in (302, 303)
    assert post(client, "/c", {"content": "two"}).status_code in (302, 303)
    refused = post(client, "/c", {"content": "three"}, htmx=True)
    assert refused.status_code == 429 and refused.headers["HX-Retarget"] == "#composer-error"
    assert refused.get_data(as_text=True).startswith("You are sending too fast. Try again in")
    page = post(client, "/c", {"content": "four"})  # without htmx: the readable page
    assert page.status_code == 429 and "<h1>429" in page.get_data(as_text=True)
    # another user is not slowed down by the first
    other = app.test_client()
    sign_up(other, "b@example.com")
    assert post(other, "/c", {"content": "one"}).status_code in (302, 303)


def test_api_per_token_answers_json(make_app):
    app = make_app(RATELIMIT_ENABLED=True, API_LIMIT="3 per minute")
    client = app.test_client()
    sign_up(client)
    with app.app_context():
        from webchat.api.tokens import create_token
        from webchat.auth.services import find_user
        from webchat.extensions import db

        _row, token = create_token(find_user("ada@example.com"))
        _row, token2 = create_token(find_user("ada@example.com"))
        db.session.commit()
    api = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    for _ in range(3):
        assert api.get("/api/v1/conversations", headers=auth).status_code == 200
    refused = api.get("/api/v1/conversations", headers=auth)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.get_json()["error"]["code"] == "rate_limited"
    other = {"Authorization": f"Bearer {token2}"}
    assert api.get("/api/v1/conversations", headers=other).status_code == 200


def test_imports_limit(make_app):
    app = make_app(RATELIMIT_ENABLED=True, IMPORT_LIMIT="1 per hour")
    client = app.test_client()
    sign_up(client)

    def upload():
        data = {"csrf_token": csrf_token(client, "/import"), "file": (b"[]", "c.json")}
        return client.post("/import", data=data, content_type="multipart/form-data")

    assert upload().status_code != 429
    assert upload().status_code == 429
    assert client.get("/import").status_code == 200  # the page itself is not limited


def test_limits_fall_back_to_memory_while_redis_is_down(make_app):
    app = make_app(
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0",
        LOGIN_LIMIT="3 per hour",
    )
    sign_up(app.test_client(), "someone@example.com")  # past the first run
    client = app.test_client()
    statuses = [sign_in(client, "a@example.com", "wrong horse").status_code for _ in range(5)]
    assert 500 not in statuses and statuses[0] == 400
    assert statuses[-1] == 429  # counted in memory meanwhile


def test_limits_can_be_switched_off(make_app):
    app = make_app(RATELIMIT_ENABLED=True, LOGIN_LIMIT="", LOGIN_IP_LIMIT="")
    sign_up(app.test_client(), "someone@example.com")  # past the first run
    client = app.test_client()
    for _ in range(15):
        assert sign_in(client, "a@example.com", "wrong horse").status_code == 400


@pytest.mark.slow
@pytest.mark.redis
def test_limits_hold_across_gunicorn_workers_and_hosts_with_redis(database, tmp_path):
    """Failed sign-ins counted by one worker lock the account on every worker and host."""
    import uuid

    import requests

    from bench.stream_server import CSRF_RE, REDIS_URL, Gunicorn, redis_reason

    reason = redis_reason()
    if reason:
        pytest.skip(reason)
    env = {
        "WEBCHAT_DATABASE_URL": database,
        "WEBCHAT_INSTANCE_PATH": str(tmp_path),
        "WEBCHAT_SECRET_KEY": "limits-test",
        "WEBCHAT_REDIS_URL": REDIS_URL,
        "WEBCHAT_RATELIMIT_ENABLED": "true",
        "WEBCHAT_RATELIMIT_KEY_PREFIX": f"webchat-test-{uuid.uuid4().hex}",
        "WEBCHAT_LOGIN_LIMIT": "6 per hour",
    }
    with Gunicorn(tmp_path, env, workers=2) as one, Gunicorn(tmp_path, env) as two:
        first = requests.Session()  # past the first run, /login is the sign-in form
        signup = CSRF_RE.search(first.get(one.url + "/signup", timeout=10).text)
        assert signup
        account = {"email": "b@example.com", "password": "x" * 12, "confirm": "x" * 12}
        first.post(one.url + "/signup", data={**account, "csrf_token": signup.group(1)}, timeout=10)
        http = requests.Session()
        token = CSRF_RE.search(http.get(one.url + "/login", timeout=10).text)
        assert token
        close = {"Connection": "close", "X-CSRFToken": token.group(1)}  # a new connection each

        def attempt(server) -> int:
            return http.post(
                server.url + "/login",
                data={"email": "a@example.com", "password": "wrong horse"},
                headers=close,
                allow_redirects=False,
                timeout=10,
            ).status_code

        statuses = [attempt(server) for server in (one, one, one, two, one, two)]
        assert statuses == [400] * 6
        assert attempt(one) == 429 and attempt(two) == 429


def test_gateway_sends_count_per_token_and_answer_in_each_apis_shape(make_app):
    """``/v1/chat/completions`` and ``/v1/messages`` are sends (``SEND_LIMIT``), counted per token
    (``x-api-key`` as well as Bearer); past it, each API's own 429 body."""
    app = make_app(RATELIMIT_ENABLED=True, SEND_LIMIT="2 per minute")
    client = app.test_client()
    sign_up(client)
    with app.app_context():
        from webchat.api.tokens import create_token
        from webchat.auth.services import find_user
        from webchat.extensions import db

        _row, token = create_token(find_user("ada@example.com"))
        db.session.commit()
    ask = {"model": "demo/echo", "messages": [{"role": "user", "content": "hi"}]}
    bearer = {"Authorization": f"Bearer {token}"}
    for _ in range(2):
        assert client.post("/v1/chat/completions", json=ask, headers=bearer).status_code == 200
    refused = client.post("/v1/chat/completions", json=ask, headers=bearer)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.get_json()["error"]["type"] == "rate_limit_exceeded"
    body = {**ask, "max_tokens": 10}
    for _ in range(2):
        answer = client.post("/v1/messages", json=body, headers={"x-api-key": token})
        assert answer.status_code == 200
    refused = client.post("/v1/messages", json=body, headers={"x-api-key": token})
    assert refused.status_code == 429
    assert refused.get_json() == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": refused.get_json()["error"]["message"]},
    }
    wait_for_runs(app)
