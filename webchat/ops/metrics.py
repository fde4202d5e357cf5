"""webchat's Prometheus metrics (prometheus-client) and the one-line hooks that feed them.

- ``webchat_runs_total{status}``: runs ended, by final status (complete, error, cancelled,
  interrupted);
- ``webchat_open_streams``: SSE/JSON streams of replies being served now;
- ``webchat_persist_lag_seconds``: from a delta's arrival to its commit (``FLUSH_INTERVAL_MS``
  plus the write), per append;
- ``webchat_request_duration_seconds{method,endpoint,status}``: request latency until the
  response is returned (for a stream: until its headers, not its end);
- ``webchat_provider_errors_total{kind}``: provider failures by kind (the exception's class,
  ``timeout``, ``incomplete``, ``unknown_model``);
- ``webchat_tool_calls_total{tool,outcome}``: tool calls by tool and ok / error / timeout.

The metrics live in the process's default registry. With several gunicorn workers, set
``PROMETHEUS_MULTIPROC_DIR`` (an empty folder, emptied at each start) so that ``/metrics``
adds every worker's values up (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

RUNS = Counter("webchat_runs", "Runs ended, by final status.", ["status"])
OPEN_STREAMS = Gauge(
    "webchat_open_streams", "Reply streams being served now.", multiprocess_mode="livesum"
)
PERSIST_LAG = Histogram(
    "webchat_persist_lag_seconds",
    "Seconds from a delta's arrival to its commit.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0),
)
REQUEST_DURATION = Histogram(
    "webchat_request_duration_seconds",
    "Seconds to answer a request (a stream: until its headers).",
    ["method", "endpoint", "status"],
)
PROVIDER_ERRORS = Counter("webchat_provider_errors", "Provider failures, by kind.", ["kind"])
TOOL_CALLS = Counter("webchat_tool_calls", "Tool calls, by tool and outcome.", ["tool", "outcome"])


def run_finished(status: str) -> None:
    """Count a run that ended with ``status``."""
    RUNS.labels(status=status).inc()


def persisted(seconds: float) -> None:
    """Record the lag of one append: ``seconds`` from its oldest delta's arrival to commit."""
    PERSIST_LAG.observe(max(0.0, seconds))


def provider_error(kind: str) -> None:
    """Count a provider failure of ``kind`` (an exception class name, or ``timeout``…)."""
    PROVIDER_ERRORS.labels(kind=kind).inc()


def tool_called(tool: str, outcome: str) -> None:
    """Count a call of ``tool`` that ended ``ok``, ``error`` or ``timeout``."""
    TOOL_CALLS.labels(tool=tool, outcome=outcome).inc()


@contextmanager
def open_stream() -> Iterator[None]:
    """Count a stream as open while the block runs."""
    OPEN_STREAMS.inc()
    try:
        yield
    finally:
        OPEN_STREAMS.dec()


def exposition() -> bytes:
    """Every metric in the Prometheus text format (version 0.0.4); with
    ``PROMETHEUS_MULTIPROC_DIR`` set, the sum over the processes."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest()
