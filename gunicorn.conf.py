"""gunicorn settings for webchat: gevent workers, so one worker holds ~1,000 open SSE streams.

Override any of these on the command line or with ``GUNICORN_CMD_ARGS``; ``WEB_CONCURRENCY`` sets
the number of workers.
"""

import os

bind = os.environ.get("WEBCHAT_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
worker_class = "gevent"
worker_connections = 2000  # open connections per worker (SSE streams count)
timeout = 60  # seconds a worker may be silent before the arbiter restarts it
graceful_timeout = 10
keepalive = 5
control_socket_disable = True  # gunicorn 27 opens one in $HOME by default; two instances collide
accesslog = os.environ.get("WEBCHAT_ACCESS_LOG", "-")
errorlog = "-"
