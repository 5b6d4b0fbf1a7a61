"""Who is calling: the identity a verified JWT gives the caller (or ANONYMOUS with auth off)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    iss: str | None = None
    sub: str | None = None
    tenant: str | None = None
    jti: str | None = None
    fhir_servers: tuple[str, ...] = ()  # where this client may send us (outbound trust)
    authenticated: bool = False


ANONYMOUS = ClientIdentity()
