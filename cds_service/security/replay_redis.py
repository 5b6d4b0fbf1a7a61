"""The JWT replay cache in Redis (SEC-8), for deployments with many workers or many hosts.

Same interface as `jwt_verifier.SqlReplayStore`: `seen_before(key, expires_at)` atomically records
the key and says whether it was already there. One `SET key 1 NX EXAT expires_at` does both in a
single round trip, and Redis drops the key by itself when the token could no longer be accepted.

Fail closed: when Redis cannot be reached the token is refused (an error here must never let a
replayed token through); the caller sees a 401 and the log names the reason.
"""
from __future__ import annotations

import logging
import math
import time
from typing import Callable

log = logging.getLogger("cds_service.security.auth")

KEY_PREFIX = "cds:jti:"


class RedisReplayStore:
    def __init__(self, client, *, clock: Callable[[], float] = time.time):
        self._redis = client
        self._clock = clock

    @classmethod
    def from_url(cls, url: str, *, timeout_s: float = 1.0, clock: Callable[[], float] = time.time) -> "RedisReplayStore":
        import redis  # optional dependency: the `redis` extra

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


def make_replay_store(settings, engine, *, clock: Callable[[], float] = time.time):
    """Redis when `redis_url` is set, else the `jti_seen` table of the service database."""
    if settings.redis_url:
        return RedisReplayStore.from_url(settings.redis_url, clock=clock)
    from cds_service.security.jwt_verifier import SqlReplayStore

    return SqlReplayStore(engine, clock=clock)
