"""Wake streams that wait for a run: in-process, or across processes and hosts over Redis.

Notifications only wake readers; the database stays the source of truth, and a reader that misses
a notification still re-reads the database after ``STREAM_POLL_MS``. Each key (a run id) has a
version counter, so a notification that arrives between a reader's database read and its wait is
never lost: the reader waits for "a version newer than the one I read under".

A notification may carry a payload: for an append, ``(message id, start offset, text)``, the text
just committed at that character offset of that message. A reader whose cursor is exactly there
sends the text without reading the database; any other reader (a gap, a payload it never got, a
notification without one) reads the database as before, so a payload can save a read but never
change what a client ends up with.

With ``REDIS_URL`` set, :func:`publish` also sends ``PUBLISH webchat:run:<key>`` (a JSON body with
the payload and the sending process's id) and one listener thread per process
(``PSUBSCRIBE webchat:run:*``) wakes the local readers, so 1,000 open streams in a worker hold one
Redis connection, not 1,000. A process skips its own messages (it has woken its readers already).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "webchat:run:"
RECENT = 64  # payloads kept per key, for readers that wake late


class _Slot:
    __slots__ = ("cond", "version", "waiters", "recent")

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.version = 0
        self.waiters = 0
        self.recent: deque[tuple[int, Any]] = deque(maxlen=RECENT)


class Subscription:
    """A reader's hold on one key: read :attr:`version`, read the database, then :meth:`wait`."""

    def __init__(self, slot: _Slot) -> None:
        self._slot = slot

    @property
    def version(self) -> int:
        """How many notifications this process has seen for the key."""
        return self._slot.version

    def wait(self, seen: int, timeout: float) -> bool:
        """Block until the version passes ``seen`` or ``timeout`` seconds pass; True if woken."""
        with self._slot.cond:
            return self._slot.cond.wait_for(lambda: self._slot.version != seen, timeout)

    def since(self, seen: int) -> tuple[int, list[Any] | None]:
        """The version now, and the payloads of every notification after ``seen`` in order, or
        None when one of them had none or is no longer kept (then read the database)."""
        slot = self._slot
        with slot.cond:
            version = slot.version
            payloads = [p for v, p in slot.recent if v > seen]
        if len(payloads) != version - seen or any(p is None for p in payloads):
            return version, None
        return version, payloads


class LocalNotifier:
    """In-process notifications (the embedded default): one condition variable per key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[str, _Slot] = {}

    @contextmanager
    def subscribe(self, key: str) -> Iterator[Subscription]:
        """Hold a :class:`Subscription` to ``key`` for the block's duration."""
        with self._lock:
            slot = self._slots.setdefault(key, _Slot())
            slot.waiters += 1
        try:
            yield Subscription(slot)
        finally:
            with self._lock:
                slot.waiters -= 1
                if slot.waiters == 0 and self._slots.get(key) is slot:
                    del self._slots[key]

    def wake(self, key: str, payload: Any = None) -> None:
        """Wake this process's readers of ``key``, with ``payload`` (see the module)."""
        with self._lock:
            slot = self._slots.get(key)
        if slot is None:
            return
        with slot.cond:
            slot.version += 1
            slot.recent.append((slot.version, payload))
            slot.cond.notify_all()

    def publish(self, key: str, payload: Any = None) -> None:
        """Tell every reader of ``key`` that new data is stored (``payload``: see the module)."""
        self.wake(key, payload)

    def publish_many(self, payloads: Mapping[str, Any]) -> None:
        """:meth:`publish` each key of ``payloads`` with its payload."""
        for key, payload in payloads.items():
            self.wake(key, payload)


class RedisNotifier(LocalNotifier):
    """Redis pub/sub (redis-py) on top of the local notifier, for many workers on many hosts."""

    def __init__(self, url: str) -> None:
        super().__init__()
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._url = url
        self._listener_pid: int | None = None
        self._start_lock = threading.Lock()
        self._origin = uuid.uuid4().hex  # this process's messages, which it skips

    def publish(self, key: str, payload: Any = None) -> None:
        """Wake local readers at once and publish to the other processes (errors are logged)."""
        self.publish_many({key: payload})

    def publish_many(self, payloads: Mapping[str, Any]) -> None:
        """Wake local readers of each key at once, then publish them all in one round trip."""
        for key, payload in payloads.items():
            self.wake(key, payload)
        try:
            pipe = self._redis.pipeline(transaction=False)
            for key, payload in payloads.items():
                pipe.publish(CHANNEL_PREFIX + key, json.dumps([self._origin, payload]))
            pipe.execute()
        except Exception as exc:  # readers fall back to polling the database
            log.warning("redis publish failed: %s", exc)

    @contextmanager
    def subscribe(self, key: str) -> Iterator[Subscription]:
        """As :meth:`LocalNotifier.subscribe`, starting this process's listener on first use."""
        self._ensure_listener()
        with super().subscribe(key) as sub:
            yield sub

    def _ensure_listener(self) -> None:
        if self._listener_pid == os.getpid():
            return
        with self._start_lock:
            if self._listener_pid == os.getpid():
                return
            self._listener_pid = os.getpid()
            self._origin = uuid.uuid4().hex  # a forked child is another process
            threading.Thread(
                target=self._listen, name="webchat-redis-listener", daemon=True
            ).start()

    def _listen(self) -> None:
        import redis

        backoff = 0.5
        while True:
            try:
                client = redis.Redis.from_url(self._url, socket_connect_timeout=5)
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.psubscribe(CHANNEL_PREFIX + "*")
                backoff = 0.5
                for message in pubsub.listen():
                    channel = message.get("channel")
                    if isinstance(channel, bytes):
                        channel = channel.decode()
                    if channel and channel.startswith(CHANNEL_PREFIX):
                        origin, payload = _decode(message.get("data"))
                        if origin != self._origin:
                            self.wake(channel[len(CHANNEL_PREFIX) :], payload)
            except Exception as exc:
                log.warning("redis listener lost its connection (%s); retrying", exc)
                time.sleep(backoff)
                backoff = min(backoff * 2, 10)


def _decode(data: Any) -> tuple[str | None, Any]:
    """``(origin, payload)`` of a Redis message; a body that is not ours wakes without payload."""
    try:
        origin, payload = json.loads(data)
        if payload is not None:
            message_id, start, text = payload
            payload = (str(message_id), int(start), str(text))
        return str(origin), payload
    except (TypeError, ValueError):
        return None, None


def init_app(app: Flask) -> None:
    """Choose the notifier: Redis when ``REDIS_URL`` is set, otherwise in-process."""
    url = app.config.get("REDIS_URL")
    app.extensions["webchat.notifier"] = RedisNotifier(url) if url else LocalNotifier()


def notifier() -> LocalNotifier:
    """The current app's notifier."""
    chosen: LocalNotifier = current_app.extensions["webchat.notifier"]
    return chosen
