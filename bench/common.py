"""What every benchmark shares: the app on a throw-away database, percentiles, tables."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from flask import Flask

from webchat import create_app


def bench_app(url: str, folder: str | Path, **config: Any) -> Flask:
    """webchat on the database at ``url`` with its instance folder in ``folder``; no reaper
    (benchmarks reap nothing) and ``config`` on top."""
    return create_app(
        {
            "SECRET_KEY": "bench",
            "DATABASE_URL": url,
            "INSTANCE_PATH": str(folder),
            "REAPER_INTERVAL_MS": 0,
            **config,
        }
    )


def p90(values: list[float]) -> float:
    """The 90th percentile of ``values`` (``statistics.quantiles``, exclusive method)."""
    return statistics.quantiles(values, n=10)[-1]


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile (0–100) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def table(header: list[str], rows: list[list]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
