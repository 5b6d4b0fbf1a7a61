"""Replay protection (SEC-8): every accepted `jti` is remembered until its token expires, in a
store that all workers share, so that a token is never accepted twice.

`seen_before(key, expires_at)` atomically records the key and says whether it was already there.
Two stores: the `jti_seen` table of the service database (default), and Redis when `redis_url` is
set (deployments with many workers or many hosts). The Redis store fails closed: when Redis cannot
be reached the token is refused (an error here must never let a replayed token through); the caller
sees a 401 and the log names the reason.
"""
from __future__ import annotations

import hashlib
import logging
import math
import time
from typing import Callable, Protocol

from sqlalchemy import delete, insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from cds_service.storage import db

log = logging.getLogger("cds_service.security.auth")

KEY_PREFIX = "cds:jti:"


class ReplayStore(Protocol):
    """Where accepted `jti`s are remembered."""

    def seen_before(self, key: str, expires_at: float) -> bool:
        """Atomically record `key` until `expires_at`; True when it was already recorded (a replay)."""
        ...


def replay_key(iss: str, jti: str) -> str:
    """sha256 over iss and jti (NUL-separated so that ("ab","c") and ("a","bc") differ)."""
    return hashlib.sha256(f"{iss}\x00{jti}".encode("utf-8")).hexdigest()


class SqlReplayStore:
    """`jti_seen` in the service database: the primary key makes the insert atomic, so two workers
    (or two processes on one SQLite file / one PostgreSQL) can never both accept the same token."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time, purge_every_s: float = 300.0):
        self._engine = engine
        self._clock = clock
        self._purge_every_s = purge_every_s
        self._next_purge = 0.0

    def seen_before(self, key: str, expires_at: float) -> bool:
        now = self._clock()
        try:
            with self._engine.begin() as conn:
                # An expired row of the same key may go: its token can no longer be accepted anyway.
                conn.execute(delete(db.jti_seen).where(db.jti_seen.c.key == key, db.jti_seen.c.expires_at < now))
                conn.execute(insert(db.jti_seen).values(key=key, expires_at=expires_at))
        except IntegrityError:
            return True
        if now >= self._next_purge:
            self._next_purge = now + self._purge_every_s
            with self._engine.begin() as conn:
                conn.execute(delete(db.jti_seen).where(db.jti_seen.c.expires_at < now))
        return False


class RedisReplayStore:
    """One `SET key 1 NX PX ttl` records the key and says whether it was there, in a single round
    trip; Redis drops the key by itself when the token could no longer be accepted."""

    def __init__(self, client, *, clock: Callable[[], float] = time.time):
        self._redis = client
        self._clock = clock

    @classmethod
    def from_url(cls, url: str, *, timeout_s: float = 1.0, clock: Callable[[], float] = time.time) -> "RedisReplayStore":
        import redis  # optional dependency (the `redis` extra): imported only when `redis_url` is set

        # Timeouts on connect and on every command: a stuck Redis must not hang a worker thread.
        client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                      health_check_interval=30)
        return cls(client, clock=clock)

    def seen_before(self, key: str, expires_at: float) -> bool:
        now = self._clock()
        ttl_ms = max(1, math.ceil((expires_at - now) * 1000))  # PX from our clock: immune to Redis clock skew
        try:
            created = self._redis.set(KEY_PREFIX + key, b"1", nx=True, px=ttl_ms)
        except Exception as exc:  # redis.RedisError, OSError: fail closed (treated as a replay)
            log.error("replay cache unreachable: token refused", extra={"event": "replay_store_error",
                                                                        "error": type(exc).__name__})
            return True
        return not created


def make_replay_store(settings, engine: Engine, *, clock: Callable[[], float] = time.time) -> ReplayStore:
    """Redis when `redis_url` is set, else the `jti_seen` table of the service database."""
    if settings.redis_url:
        return RedisReplayStore.from_url(settings.redis_url, clock=clock)
    return SqlReplayStore(engine, clock=clock)
