"""``/healthz`` (database and Redis, 503 when one is down, no sign-in, no leaks) and
``/metrics`` (off by default, loopback or token, counts a reply)."""

from __future__ import annotations

import re

import pytest

from bench.stream_server import REDIS_URL, redis_reason

from .conftest import post, sign_up, wait_for_runs


def test_healthz_reports_the_database_without_sign_in(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and set(body["checks"]) == {"database"}
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["database"]["latency_ms"] >= 0
    assert response.headers["Cache-Control"] == "no-store"


def test_healthz_is_503_when_the_database_is_unreachable(app, make_app, database, tmp_path):
    if database.startswith("sqlite"):
        unreachable = f"sqlite:///{tmp_path}/no/such/folder/webchat.sqlite3"
    else:
        unreachable = "postgresql://postgres@127.0.0.1:1/webchat"
    down = make_app(DATABASE_URL=unreachable).test_client()
    response = down.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    latency = body["checks"]["database"]["latency_ms"]
    assert body == {
        "status": "fail",
        "checks": {"database": {"status": "fail", "latency_ms": latency}},
    }
    text = response.get_data(as_text=True).lower()
    for leak in ("sqlite", "postgres", "127.0.0.1", "folder", "error", "operational"):
        assert leak not in text


@pytest.mark.redis
def test_healthz_checks_redis_when_configured(make_app):
    reason = redis_reason()
    if reason:
        pytest.skip(reason)
    app = make_app(REDIS_URL=REDIS_URL)
    body = app.test_client().get("/healthz").get_json()
    assert body["checks"]["redis"]["status"] == "ok"
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # only the check reads it from here
    down = app.test_client().get("/healthz")
    assert down.status_code == 503 and down.get_json()["checks"]["redis"]["status"] == "fail"


def test_metrics_are_off_unless_configured(client):
    assert client.get("/metrics").status_code == 404


def test_metrics_from_loopback_or_with_the_token(make_app):
    local = make_app(METRICS_ENABLED=True).test_client()
    assert local.get("/metrics").status_code == 200
    remote = {"REMOTE_ADDR": "203.0.113.9"}
    assert local.get("/metrics", environ_base=remote).status_code == 404
    with_token = make_app(METRICS_ENABLED=True, METRICS_TOKEN="s3cret-metrics").test_client()
    assert with_token.get("/metrics").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert with_token.get("/metrics", headers=wrong, environ_base=remote).status_code == 401
    right = {"Authorization": "Bearer s3cret-metrics"}
    response = with_token.get("/metrics", headers=right, environ_base=remote)
    assert response.status_code == 200 and response.mimetype == "text/plain"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of metric ``name`` with exactly ``labels`` in a text exposition (0 if absent)."""
    for line in text.splitlines():
        match = re.match(r"^([a-z_]+)(\{[^}]*\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if found == labels:
            return float(match.group(3))
    return 0.0


def test_metrics_count_a_reply(make_app):
    app = make_app(METRICS_ENABLED=True)
    client = app.test_client()
    sign_up(client)
    before = client.get("/metrics").get_data(as_text=True)
    created = post(client, "/c", {"content": "count me"})
    assert created.status_code in (302, 303)
    wait_for_runs(app)
    page = client.get(created.headers["Location"])
    stream = re.search(r'sse-connect="([^"]+)"', page.get_data(as_text=True))
    if stream:  # the reply may have finished already: then the page shows no stream
        client.get(stream.group(1)).get_data()
    after = client.get("/metrics").get_data(as_text=True)

    def grew(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert grew("webchat_runs_total", status="complete") >= 1
    assert grew("webchat_persist_lag_seconds_count") >= 1
    assert (
        grew(
            "webchat_request_duration_seconds_count",
            method="POST",
            endpoint="conversations.create",
            status=str(created.status_code),
        )
        >= 1
    )
    assert "webchat_open_streams" in after
    assert "webchat_provider_errors_total" in after or "webchat_provider_errors" in after
    assert "count me" not in after  # metrics never carry content


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_metrics_add_up_every_gunicorn_worker(database, tmp_path):
    """Multiprocess mode: whichever of two workers ran the reply, /metrics counts it."""
    import time

    import requests

    from bench.stream_server import Client, Gunicorn

    folder = tmp_path / "prometheus"
    folder.mkdir()
    env = {
        "WEBCHAT_DATABASE_URL": database,
        "WEBCHAT_INSTANCE_PATH": str(tmp_path),
        "WEBCHAT_SECRET_KEY": "metrics-test",
        "WEBCHAT_METRICS_ENABLED": "true",
        "WEBCHAT_DEMO_DELAY_MS": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
    }
    with Gunicorn(tmp_path, env, workers=2) as server:
        client = Client(server.url).sign_up()
        for i in range(4):
            client.post("/c", {"content": f"count me {i}"}, htmx=False)
        deadline = time.monotonic() + 30
        done = 0.0
        while time.monotonic() < deadline:
            text = requests.get(server.url + "/metrics", timeout=5, headers={"Connection": "close"})
            done = sample(text.text, "webchat_runs_total", status="complete")
            if done >= 4:
                break
            time.sleep(0.2)
        assert done == 4
