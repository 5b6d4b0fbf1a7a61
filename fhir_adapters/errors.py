"""Errors raised while reading FHIR data. They carry the URL and status, never the access token."""
from __future__ import annotations


class FhirError(Exception):
    def __init__(self, message: str, *, url: str | None = None, status: int | None = None):
        super().__init__(message)
        self.url = url
        self.status = status


class FhirInvalidResource(FhirError):
    """A payload that is not the FHIR resource it claims to be."""


class FhirHttpError(FhirError):
    """The FHIR server answered with an error status."""


class FhirAuthError(FhirHttpError):
    """401/403: the token we were handed does not grant this read (AUTHZ-3)."""


class FhirNotFound(FhirHttpError):
    pass


class FhirConnectionError(FhirError):
    """The FHIR server could not be reached (refused, reset, DNS)."""


class FhirOutcomeError(FhirError):
    """The server answered with an OperationOutcome (or a Bundle holding an error one) instead of data (PREFETCH-3)."""


class FhirTimeout(FhirError):
    """A connect or read timeout, or the invocation's deadline ran out."""


class FhirForbiddenTarget(FhirError):
    """A request we refuse to make: a server or link outside the allow-list."""
