"""gunicorn settings for webchat: gevent workers, so one worker holds ~1,000 open SSE streams.

Override any of these on the command line or with ``GUNICORN_CMD_ARGS``; ``WEB_CONCURRENCY`` sets
the number of workers, ``WEBCHAT_BIND`` the address. The app is loaded in each worker after
gevent has patched the standard library (no ``preload_app``), so webchat's threads are greenlets.
"""

import os

bind = os.environ.get("WEBCHAT_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
worker_class = "gevent"
worker_connections = 2000  # open connections per worker (SSE streams count)
timeout = 60  # seconds a worker may be silent before the arbiter restarts it
graceful_timeout = 10  # seconds open streams and replies get to end on a restart
keepalive = 5
control_socket_disable = True  # gunicorn 27 opens one in $HOME by default; two instances collide
accesslog = os.environ.get("WEBCHAT_ACCESS_LOG", "-")
errorlog = "-"


def _webchat_app(worker):
    app = getattr(worker, "wsgi", None)
    return app if hasattr(app, "extensions") else None


def post_worker_init(worker):
    """Start this worker's reaper as it boots, so the replies of a killed worker are marked
    interrupted after a restart even before anyone opens a page."""
    app = _webchat_app(worker)
    if app is not None and app.config["REAPER_INTERVAL_MS"]:
        from webchat.streaming import runs

        runs.start_reaper(app)


def worker_exit(server, worker):
    """A worker that stops (restart, scale-down, graceful shutdown) ends the replies it was
    generating as interrupted, keeping their text, so no page waits for the reaper."""
    app = _webchat_app(worker)
    if app is not None:
        from webchat.streaming import runs

        runs.interrupt_own_runs(app)


def child_exit(server, worker):
    """With Prometheus's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``), drop a dead worker's
    live gauges (open streams) from ``/metrics``."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
