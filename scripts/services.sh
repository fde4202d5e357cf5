#!/usr/bin/env bash
# Start the local PostgreSQL and Redis the test suite uses, when they are installed but down.
# Tests that need a server that is still missing are skipped with a reason, never faked.
set -uo pipefail
if command -v pg_isready >/dev/null && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.5; done
  fi
fi
if command -v redis-cli >/dev/null && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  if command -v redis-server >/dev/null; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
    for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.5; done
  fi
fi
pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1 && echo "services: PostgreSQL up" || echo "services: PostgreSQL not available (its tests will be skipped)"
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && echo "services: Redis up" || echo "services: Redis not available (its tests will be skipped)"
exit 0
