"""FHIR access for one invocation: build the fetcher, close it, log what it cost.

`make_fetcher_factory(settings)` is what `create_app` stores as `runtime.fetcher_factory`. It returns
no fetcher (so zero outbound requests, and PREFETCH-5's 412 for missing required data) when the
request names no `fhirServer`, or one that is not allow-listed for the caller. Without
`fhirAuthorization` an allow-listed server is read with unauthenticated GETs (AUTHZ-5 leaves that
to the deployment's allow-list).
"""
from __future__ import annotations

import logging
from typing import Callable

from flask import Response, has_request_context

from cds_service.config import Settings
from cds_service.fhir_access.cache import RedisFhirCache, cache_key
from cds_service.hook_request import HookRequest
from cds_service.http.call_state import call_state
from cds_service.security.identity import ClientIdentity
from cds_service.security.outbound import fhir_server_allowed
from fhir_adapters.client import FhirClient
from fhir_adapters.errors import FhirForbiddenTarget
from fhir_adapters.fetcher import HttpFetcher

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
            call_state().fetcher = fetcher  # measured and closed when the call ends
        return fetcher

    return factory


def init_fhir_access(runtime) -> None:
    """Install the fetcher factory (with the Redis response cache when configured)."""
    settings = runtime.settings
    cache = None
    if settings.redis_url and settings.fhir_cache_ttl_s > 0:  # opt-in: it keeps patient data in Redis
        cache = RedisFhirCache.from_url(settings.redis_url, settings.fhir_cache_ttl_s)
    runtime.fetcher_factory = make_fetcher_factory(settings, cache)


def record_fhir_timings(resp: Response) -> Response:
    """After-request hook: the call's FHIR request count and time onto its timings (call log, metrics)."""
    state = call_state()
    if state.fetcher is not None and state.timings is not None:
        state.timings.extra["fhir_calls"] = state.fetcher.calls
        state.timings.extra["fhir"] = state.fetcher.seconds
    return resp


def close_fetcher(_exc: BaseException | None) -> None:
    """Teardown hook: release the fetcher's HTTP session, however the call ended."""
    state = call_state()
    fetcher, state.fetcher = state.fetcher, None
    if fetcher is not None:
        fetcher.close()
