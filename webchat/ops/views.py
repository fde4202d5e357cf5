"""``GET /healthz`` and ``GET /metrics``; the request-latency hooks."""

from __future__ import annotations

import hmac
import time

from flask import Blueprint, Flask, Response, abort, current_app, g, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from ..extensions import db
from . import metrics

bp = Blueprint("ops", __name__)

LOOPBACK = frozenset({"127.0.0.1", "::1"})
CHECK_TIMEOUT_S = 2


def _timed(check) -> dict:
    """``{"status": "ok"|"fail", "latency_ms": float}`` of running ``check()``; the reason of a
    failure is logged, never answered (the endpoint is public)."""
    started = time.perf_counter()
    try:
        check()
        status = "ok"
    except Exception:  # noqa: BLE001 - any failure is "fail"
        current_app.logger.warning("health check failed", exc_info=True)
        status = "fail"
    return {"status": status, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _database() -> None:
    try:
        db.session.execute(text("SELECT 1"))
    finally:
        db.session.rollback()


def _redis() -> None:
    import redis

    client = redis.Redis.from_url(
        current_app.config["REDIS_URL"],
        socket_timeout=CHECK_TIMEOUT_S,
        socket_connect_timeout=CHECK_TIMEOUT_S,
    )
    try:
        client.ping()
    finally:
        client.close()


@bp.get("/healthz")
def healthz():
    """Health of the database (and Redis when configured): 200, or 503 when one is down.

    Body: ``{"status": "ok"|"fail", "checks": {"database": {"status", "latency_ms"},
    "redis"?: {…}}}``; no versions, hosts or error texts. Needs no sign-in."""
    checks = {"database": _timed(_database)}
    if current_app.config.get("REDIS_URL"):
        checks["redis"] = _timed(_redis)
    ok = all(c["status"] == "ok" for c in checks.values())
    response = jsonify({"status": "ok" if ok else "fail", "checks": checks})
    response.status_code = 200 if ok else 503
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/metrics")
def metrics_view():
    """Prometheus metrics (text format 0.0.4). A 404 unless ``METRICS_ENABLED``; with
    ``METRICS_TOKEN`` it needs ``Authorization: Bearer <token>``, without one it answers only
    loopback clients (127.0.0.1, ::1)."""
    config = current_app.config
    if not config["METRICS_ENABLED"]:
        abort(404)
    token = config.get("METRICS_TOKEN")
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
            response = Response("A metrics token is needed.\n", 401, mimetype="text/plain")
            response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    elif request.remote_addr not in LOOPBACK:
        abort(404)
    return Response(metrics.exposition(), mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    """Register the blueprint and time every request (``webchat_request_duration_seconds``)."""
    app.register_blueprint(bp)

    @app.before_request
    def _start_timer() -> None:
        g.webchat_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.pop("webchat_started", None)
        if started is not None:
            metrics.REQUEST_DURATION.labels(
                method=request.method,
                endpoint=request.endpoint or "none",
                status=str(response.status_code),
            ).observe(time.perf_counter() - started)
        return response
