"""Who is calling: the identity a verified JWT gives the caller (or ANONYMOUS with auth off)."""
from __future__ import annotations

from dataclasses import dataclass

from cds_service.wire_text import clipped


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    iss: str | None = None
    sub: str | None = None
    tenant: str | None = None
    jti: str | None = None
    fhir_servers: tuple[str, ...] = ()  # where this client may send us (outbound trust)
    authenticated: bool = False

    @property
    def client(self) -> tuple[str, str]:
        """(iss, tenant) as stored rows are keyed: '' for no issuer (authentication off) or no tenant;
        made storable (a claim may hold anything its signer put there)."""
        return (clipped(self.iss or "", 500), clipped(self.tenant or "", 200))


ANONYMOUS = ClientIdentity()
