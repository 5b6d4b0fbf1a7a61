"""FHIR access for one invocation (issue #3): build the fetcher, close it, log what it cost.

`make_fetcher_factory(settings)` is what `create_app` stores as `runtime.fetcher_factory`. It returns
no fetcher (so zero outbound requests, and PREFETCH-5's 412 for missing required data) when the
request names no `fhirServer`, or one that is not allow-listed for the caller (issue #6). Without
`fhirAuthorization` an allow-listed server is read with unauthenticated GETs (AUTHZ-5 leaves that
to the deployment's allow-list).
"""
from __future__ import annotations

import logging
from typing import Callable

from flask import Flask, g, has_request_context

from fhir_adapters.client import FhirClient
from fhir_adapters.errors import FhirForbiddenTarget
from fhir_adapters.fetcher import HttpFetcher

from cds_service.security.identity import ClientIdentity
from cds_service.fhir_access.cache import RedisFhirCache, cache_key
from cds_service.config import Settings
from cds_service.hook_request import HookRequest
from cds_service.security.outbound import fhir_server_allowed

log = logging.getLogger("cds_service.fhir")


def make_fetcher_factory(settings: Settings, cache=None) -> Callable[..., HttpFetcher | None]:
    def factory(request: HookRequest, identity: ClientIdentity, deadline: float | None = None) -> HttpFetcher | None:
        if not request.fhir_server or not fhir_server_allowed(settings, identity, request.fhir_server):
            return None
        token = request.fhir_auth.access_token if request.fhir_auth else None
        try:
            client = FhirClient(request.fhir_server, token=token, timeout=settings.fhir_timeout,
                                max_pages=settings.fhir_max_pages, deadline=deadline,
                                allow_http=settings.fhir_allow_http, retries=settings.fhir_retries,
                                backoff_s=settings.fhir_retry_backoff_s, pool_size=settings.fhir_max_workers)
        except FhirForbiddenTarget as exc:  # e.g. a token over plain http (REQ-3)
            log.warning("no FHIR access", extra={"event": "fhir_refused", "reason": str(exc)})
            return None
        server = request.fhir_server
        fetcher = HttpFetcher(client, deadline=deadline, max_workers=settings.fhir_max_workers, cache=cache,
                              cache_key=lambda query: cache_key(server, token, query))
        if has_request_context():
            g.fhir_fetcher = fetcher  # closed and measured when the request ends
        return fetcher

    return factory


def init_fhir_access(app: Flask, runtime) -> None:
    """Install the fetcher factory; record FHIR call count/time in the call log; close sessions."""
    settings = runtime.settings
    cache = None
    if settings.redis_url and settings.fhir_cache_ttl_s > 0:  # opt-in: it keeps patient data in Redis
        cache = RedisFhirCache.from_url(settings.redis_url, settings.fhir_cache_ttl_s)
    runtime.fetcher_factory = make_fetcher_factory(settings, cache)

    @app.after_request
    def _fhir_timings(resp):
        fetcher = g.get("fhir_fetcher")
        timings = g.get("timings")
        if fetcher is not None and timings is not None:
            timings.extra["fhir_calls"] = fetcher.calls
            timings.extra["fhir"] = fetcher.seconds
        return resp

    @app.teardown_request
    def _close(_exc):
        fetcher = g.pop("fhir_fetcher", None)
        if fetcher is not None:
            fetcher.close()
