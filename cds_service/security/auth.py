"""Who is calling: the EHR's signed JWT (SEC-2..10), checked on discovery, service and feedback calls.

The verifier itself lives in `jwt_verifier`. This module only extracts the bearer token and applies
the `auth_required` setting; development mode is never the default. Without a bearer token (or with
another scheme, e.g. `Basic`) the answer is the same bare 401 (SEC-2, SEC-10). The reason of a
refusal travels in the `AuthError`; the error handler puts it on the audit row, never in the answer.
"""
from __future__ import annotations

import logging

from flask import Request

from cds_service.errors import AuthError
from cds_service.security.identity import ANONYMOUS, ClientIdentity

log = logging.getLogger("cds_service.security.auth")


def authenticate(runtime, req: Request, audiences: list[str]) -> ClientIdentity:
    """Return the caller's identity or raise AuthError (→ bare 401)."""
    header = req.headers.get("Authorization", "")
    if not runtime.settings.auth_required:
        log.warning("AUTHENTICATION IS OFF (auth_required = false): development only", extra={"event": "auth_disabled"})
        return ANONYMOUS
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or runtime.verifier is None:
        reason = ("no bearer token" if not header else "not a bearer token" if scheme.lower() != "bearer"
                  else "empty bearer token" if not token.strip() else "no verifier")
        log.info("JWT rejected", extra={"event": "auth_failed", "reason": reason})
        raise AuthError(reason)
    return runtime.verifier.verify(token.strip(), audiences)
