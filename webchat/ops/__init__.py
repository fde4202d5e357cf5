"""Operations: ``GET /healthz`` (database and Redis, each with its latency) and ``GET /metrics``
(Prometheus text format, off unless configured); the metrics themselves in :mod:`.metrics`."""

from .views import bp, init_app

__all__ = ["bp", "init_app"]
