"""An optional FHIR response cache in Redis, for many workers answering the same chart.

A chart opening fires several hooks at once (every patient-view service); without prefetch each would
run the same searches. With `redis_url` and `fhir_cache_ttl_s > 0`, a successful search result is kept
for `fhir_cache_ttl_s` seconds under a key that binds the FHIR server, the query AND a hash of the
access token: a result is only ever served to a holder of the same token, who could read it anyway
(AUTHZ-2/3). Values are the resources as JSON; Redis drops them by itself at expiry. Off by default:
it puts patient data in Redis, so only turn it on where Redis is as protected as the service.

Fail open: an unreachable or slow Redis is a cache miss (with a timeout on every command), never an error.
"""
from __future__ import annotations

import hashlib
import json
import logging

log = logging.getLogger("cds_service.fhir")

KEY_PREFIX = "cds:fhir:"


def cache_key(fhir_server: str, token: str | None, query: str) -> str:
    token_hash = hashlib.sha256((token or "").encode()).hexdigest()
    return KEY_PREFIX + hashlib.sha256(f"{fhir_server}\0{token_hash}\0{query}".encode()).hexdigest()


class RedisFhirCache:
    def __init__(self, client, ttl_s: int):
        self._redis = client
        self.ttl_s = int(ttl_s)

    @classmethod
    def from_url(cls, url: str, ttl_s: int, *, timeout_s: float = 0.2) -> "RedisFhirCache":
        import redis  # optional dependency: the `redis` extra

        client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        return cls(client, ttl_s)

    def get(self, key: str) -> tuple[dict, ...] | None:
        try:
            raw = self._redis.get(key)
        except Exception as exc:  # redis.RedisError and socket errors: a miss
            log.warning("FHIR cache unavailable", extra={"event": "fhir_cache_error", "error": type(exc).__name__})
            return None
        return tuple(json.loads(raw)) if raw else None

    def set(self, key: str, resources: tuple[dict, ...]) -> None:
        try:
            self._redis.set(key, json.dumps(list(resources), separators=(",", ":")), ex=self.ttl_s)
        except Exception as exc:
            log.warning("FHIR cache unavailable", extra={"event": "fhir_cache_error", "error": type(exc).__name__})
