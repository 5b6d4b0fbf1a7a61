"""Outbound trust: may this invocation send the EHR's token to this FHIR server? (issue #6 item 3)

A `fhirServer` not allow-listed for the calling client gets no request at all; the invocation then
behaves as if no FHIR access was given. A bearer token never goes over plain http unless the
development setting `fhir_allow_http` says so (REQ-3).
"""
from __future__ import annotations

from urllib.parse import urlsplit

from .auth import ClientIdentity
from .config import Settings


def normalize_base(url: str) -> str:
    parts = urlsplit(url.strip())
    port = f":{parts.port}" if parts.port and parts.port not in (80, 443) else ""
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}{port}{parts.path.rstrip('/')}"


def fhir_server_allowed(settings: Settings, identity: ClientIdentity, url: str | None) -> bool:
    """True when `url` is on the caller's allow-list (or, with auth off, on `settings.fhir_servers`)."""
    if not url:
        return False
    target = normalize_base(url)
    if target.startswith("http://") and not settings.fhir_allow_http:
        return False
    allowed = identity.fhir_servers if identity.authenticated else settings.fhir_servers
    return target in {normalize_base(u) for u in allowed}
