"""Capability links to the explanation page: an unguessable, expiring token bound to the client, the
service and the hookInstance of the call that produced the card.

The page shows age, sex, dated lab values and diagnoses, so its URL must not be derivable from
anything logged (the hookInstance is in the call log and the audit table). The token is
`<payload>.<mac>`: the payload (base64url JSON) names the client (iss, tenant), service,
hookInstance and expiry; the MAC is HMAC-SHA256 over it with `ui_link_secret`, which never leaves
the service. Whoever holds the URL may open the page until it expires, and no other page: the
token cannot be altered to name another client's call. The SMART launch stays the way in for EHRs
that support it; its `appContext` carries the same token.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from dataclasses import dataclass

from cds_service.errors import ConfigError

log = logging.getLogger("cds_service.security.capability")

MIN_SECRET_CHARS = 32
MAX_TOKEN_CHARS = 2048
_VERSION = 1
_CONTEXT = b"cds-hooks-ml explanation link v1\x00"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True, slots=True)
class Grant:
    """What a valid token lets its holder open."""

    iss: str
    tenant: str
    service_id: str
    hook_instance: str
    expires_at: float

    @property
    def client(self) -> tuple[str, str]:
        return (self.iss, self.tenant)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LinkSigner:
    def __init__(self, secret: str, ttl_s: int):
        self._key = hashlib.sha256(secret.encode("utf-8")).digest()
        self.ttl_s = ttl_s

    @classmethod
    def from_settings(cls, settings) -> "LinkSigner":
        """The signer of `ui_link_secret`. Without one: refused (ConfigError) in a production
        configuration; the demo configuration (the simulator on) and development mode (authentication
        off) get a random secret for this process and say so."""
        secret = settings.ui_link_secret
        if not secret:
            if settings.auth_required and not settings.ui_simulator:
                raise ConfigError("ui_link_secret is required when the explanation pages are on ([ui] link_secret, "
                                  f"at least {MIN_SECRET_CHARS} random characters, e.g. from `openssl rand -base64 48`): "
                                  "it signs the explanation links; or turn the pages off with [ui] enabled = false")
            log.warning("ui_link_secret is not set: explanation links are signed with a random secret of this process "
                        "(demo configuration or development mode); they stop opening when the service restarts",
                        extra={"event": "link_secret_random", "setting": "ui_link_secret"})
            secret = secrets.token_urlsafe(48)
        elif len(secret) < MIN_SECRET_CHARS:
            raise ConfigError(f"ui_link_secret must be at least {MIN_SECRET_CHARS} characters")
        return cls(secret, settings.ui_explain_link_ttl_s)

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, _CONTEXT + payload.encode("ascii"), hashlib.sha256).digest())

    def token(self, client: tuple[str, str], service_id: str, hook_instance: str, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + self.ttl_s)
        payload = _b64(json.dumps([_VERSION, client[0], client[1], service_id, hook_instance, expires],
                                  separators=(",", ":")).encode("utf-8"))
        return f"{payload}.{self._mac(payload)}"

    def verify(self, token: object, now: float | None = None) -> Grant | None:
        """The grant of a genuine, unexpired token; None for anything else (no reason is given)."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not _TOKEN.match(token):
            return None
        payload, mac = token.split(".")
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        try:
            version, iss, tenant, service_id, hook_instance, expires = json.loads(_unb64(payload))
        except (ValueError, TypeError):
            return None
        if version != _VERSION or not isinstance(expires, int) or expires <= (time.time() if now is None else now):
            return None
        return Grant(iss, tenant, service_id, hook_instance, float(expires))
