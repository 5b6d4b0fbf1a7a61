"""JWK Sets fetched from the allow-listed URLs of trusted clients (SEC-7), cached per URL.

Only URLs the verifier already checked against the client's allow-list are ever passed in. A set
is reused for `max_age_s`; an unknown `kid` triggers a refresh, at most one request per URL per
`min_refresh_s` (so a flood of made-up kids cannot flood the EHR). Every request has a timeout,
follows no redirect and reads at most `MAX_JWKS_BYTES`.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import requests

from cds_service.security.outbound import read_capped

log = logging.getLogger("cds_service.security.auth")

MAX_JWKS_BYTES = 256 * 1024


@dataclass
class _CachedSet:
    keys: tuple[Mapping[str, Any], ...] = ()
    fetched_at: float | None = None  # last successful fetch
    attempted_at: float | None = None  # last attempt, successful or not (rate limit)
    lock: threading.Lock = field(default_factory=threading.Lock)


class JwksCache:
    """A per-URL cache of JWK Sets. Only URLs the caller already checked against the allow-list are
    ever passed in. A set is reused for `max_age_s`; an unknown `kid` triggers a refresh, at most
    one request per URL per `min_refresh_s` (so a flood of made-up kids cannot flood the EHR)."""

    def __init__(self, *, timeout: tuple[float, float], min_refresh_s: float, max_age_s: float,
                 clock: Callable[[], float] = time.time, session: requests.Session | None = None):
        self._timeout = timeout
        self._min_refresh_s = min_refresh_s
        self._max_age_s = max_age_s
        self._clock = clock
        self._session = session or requests.Session()
        self._sets: dict[str, _CachedSet] = {}
        self._sets_lock = threading.Lock()

    def keys_for(self, url: str, kid: str) -> list[Mapping[str, Any]]:
        with self._sets_lock:
            entry = self._sets.setdefault(url, _CachedSet())
        with entry.lock:
            now = self._clock()
            fresh = entry.fetched_at is not None and now - entry.fetched_at < self._max_age_s
            known = any(k.get("kid") == kid for k in entry.keys)
            may_fetch = entry.attempted_at is None or now - entry.attempted_at >= self._min_refresh_s
            if (not fresh or not known) and may_fetch:
                entry.attempted_at = now
                keys = self._fetch(url)
                if keys is not None:
                    entry.keys, entry.fetched_at = keys, now
            return [k for k in entry.keys if k.get("kid") == kid]

    def _fetch(self, url: str) -> tuple[Mapping[str, Any], ...] | None:
        """GET the set: explicit timeout, no redirects (a redirect could leave the allow-list)."""
        try:
            resp = self._session.get(url, timeout=self._timeout, allow_redirects=False, stream=True,
                                     headers={"Accept": "application/json, application/jwk-set+json"})
            try:
                if resp.status_code != 200:
                    log.warning("JWK Set fetch failed", extra={"event": "jwks_fetch_failed", "path": url,
                                                               "reason": f"http {resp.status_code}"})
                    return None
                body = read_capped(resp, MAX_JWKS_BYTES)
                if body is None:
                    log.warning("JWK Set too large", extra={"event": "jwks_fetch_failed", "path": url,
                                                            "reason": "too large"})
                    return None
            finally:
                resp.close()
            data = json.loads(body)
        except (requests.RequestException, ValueError, RecursionError) as exc:
            log.warning("JWK Set fetch failed", extra={"event": "jwks_fetch_failed", "path": url,
                                                       "reason": type(exc).__name__})
            return None
        keys = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(keys, list):
            log.warning("JWK Set malformed", extra={"event": "jwks_fetch_failed", "path": url, "reason": "no keys array"})
            return None
        # Symmetric or unusable entries are dropped here; kid selection happens later.
        return tuple(k for k in keys if isinstance(k, dict) and k.get("kty") in ("RSA", "EC")
                     and isinstance(k.get("kid"), str) and k.get("use") in (None, "sig"))
