"""The errors of the service. A `CdsError` carries the HTTP status and FHIR issue code it is answered
with; `cds_service.http.errors` is the one place that turns them into responses (architecture 2.5).
`ConfigError` is no HTTP error: a wrong setting stops the service from starting.
"""
from __future__ import annotations


class ConfigError(ValueError):
    """A setting (or a trusted client's entry) is wrong; the message names it."""


class CdsError(Exception):
    """Root of the errors this service answers with. `status` and `code` pick the HTTP answer."""

    status = 500
    code = "exception"  # FHIR issue-type code (http://hl7.org/fhir/issue-type)

    def __init__(self, message: str, *, expression: str | None = None):
        super().__init__(message)
        self.message = message
        self.expression = expression


class InvalidRequest(CdsError):
    """REQ-2: the body is not a CDS Hooks request we can act on."""

    status, code = 400, "invalid"


class AuthError(CdsError):
    """SEC-10: any failed check of the caller's JWT."""

    status, code = 401, "login"


class UnknownService(CdsError):
    status, code = 404, "not-found"


class UnknownCard(CdsError):
    """Feedback naming a card that was not issued to the calling client (tenant isolation)."""

    status, code = 404, "not-found"


class PayloadTooLarge(CdsError):
    status, code = 413, "too-costly"


class PrefetchUnavailable(CdsError):
    """PREFETCH-5 / ERR-1: required data is neither prefetched nor obtainable from the FHIR server."""

    status, code = 412, "not-found"


class ModelError(CdsError):
    status, code = 500, "exception"
