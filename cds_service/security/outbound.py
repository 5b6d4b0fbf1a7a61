"""Outbound trust: may this invocation send the EHR's token to this FHIR server?

A `fhirServer` not allow-listed for the calling client gets no request at all; the invocation then
behaves as if no FHIR access was given. A bearer token never goes over plain http unless the
development setting `fhir_allow_http` says so (REQ-3). Redirects and `next` links that leave the
server are refused by the FHIR client itself (`fhir_adapters/client.py`).
"""
from __future__ import annotations

import logging
from typing import Any, Callable
from urllib.parse import urlsplit

from cds_service.config import Settings
from cds_service.security.identity import ClientIdentity
from fhir_adapters.urls import normalize_url

log = logging.getLogger("cds_service.security.outbound")


def normalize_base(url: str) -> str:
    """scheme://host[:port]/path, normalised (`fhir_adapters.urls`: case, default port, escapes, dot
    segments) with the trailing slash dropped, so `https://ehr/r4/x/..` is `https://ehr/r4`.

    Raises ValueError for what cannot be a FHIR base URL: not http(s), no host, a bad port, user
    info (`https://evil@host/` must not pass as `host`), a query or a fragment.
    """
    url = url.strip()
    parts = urlsplit(url)
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ValueError("not a FHIR base URL")
    return normalize_url(url).rstrip("/")


def fhir_server_allowed(settings: Settings, identity: ClientIdentity, url: str | None) -> bool:
    """True when `url` is on the caller's allow-list (or, with auth off, on `settings.fhir_servers`)."""
    if not url:
        return False
    try:
        target = normalize_base(url)
    except ValueError:
        return False
    if target.startswith("http://") and not settings.fhir_allow_http:
        return False
    allowed = identity.fhir_servers if identity.authenticated else settings.fhir_servers
    return target in normalized_bases(allowed)


def guard_fetcher_factory(settings: Settings, factory: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap the FHIR fetcher factory so that a request naming a fhirServer that is not
    allow-listed for the caller gets no fetcher: zero requests, and the invocation behaves as if
    no FHIR access was given (412 for a missing required prefetch key, PREFETCH-5)."""
    if getattr(factory, "_cds_guarded", False):
        return factory

    def guarded(request, identity, deadline=None):
        server = getattr(request, "fhir_server", None)
        if server and not fhir_server_allowed(settings, identity, server):
            log.info("fhirServer not allow-listed for this client: no FHIR access",
                     extra={"event": "fhir_server_refused", "iss": getattr(identity, "iss", None),
                            "hookInstance": getattr(request, "hook_instance", None)})
            return None
        return factory(request, identity, deadline)

    guarded._cds_guarded = True  # type: ignore[attr-defined]
    return guarded


def normalized_bases(urls) -> set[str]:
    """The normalised form of each configured FHIR base URL (malformed entries dropped)."""
    out = set()
    for url in urls:
        try:
            out.add(normalize_base(url))
        except ValueError:
            continue
    return out


def read_capped(resp, limit: int) -> bytes | None:
    """The body of a streamed `requests` response, or None once it grows past `limit` bytes (a
    misbehaving server cannot make us buffer an unbounded document)."""
    body = b""
    for chunk in resp.iter_content(65536):
        body += chunk
        if len(body) > limit:
            return None
    return body
