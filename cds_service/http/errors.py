"""The one place that maps errors to HTTP answers (architecture 2.5).

Every non-2xx answer except 401 carries a FHIR OperationOutcome (ERR-3); 401 stays bare with
`WWW-Authenticate: Bearer` so that nothing tells a forger which check failed (SEC-10).
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException

from cds_service.errors import AuthError, CdsError
from cds_service.http.call_state import call_state

log = logging.getLogger("cds_service")


def operation_outcome(message: str, code: str, *, severity: str = "error", expression: str | None = None) -> dict:
    """A minimal valid FHIR R4 OperationOutcome with one issue (ERR-3)."""
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": message}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def outcome_response(status: int, message: str, code: str, expression: str | None = None) -> Response:
    body = json.dumps(operation_outcome(message, code, expression=expression))
    return Response(body, status=status, mimetype="application/fhir+json")


def register_error_handlers(app: Flask) -> None:
    """Install the handlers that turn every failure into a clear status + OperationOutcome."""

    @app.errorhandler(CdsError)
    def _cds_error(err: CdsError):
        if isinstance(err, AuthError):
            # SEC-10: bare 401, no body, no hint which check failed; the reason goes to the audit row.
            call_state().auth_failure = err.message
            return Response(status=401, headers={"WWW-Authenticate": "Bearer"})
        if err.status >= 500:
            log.error("request failed", extra={"event": "error", "error": type(err).__name__})
        return outcome_response(err.status, err.message, err.code, err.expression)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        # 404/405/413 raised by Werkzeug routing or limits, answered in the same shape.
        code = {404: "not-found", 405: "not-supported", 413: "too-costly"}.get(err.code or 500, "processing")
        resp = outcome_response(err.code or 500, err.description or err.name, code)
        valid_methods = getattr(err, "valid_methods", None)  # werkzeug's MethodNotAllowed
        if err.code == 405 and valid_methods:
            resp.headers["Allow"] = ", ".join(valid_methods)
        return resp

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        # ERR-4: never a stack trace on the wire, never a partial card list. The log line names the
        # exception type and the correlation id only: messages may quote patient data.
        log.error(
            "unexpected error",
            extra={
                "event": "error",
                "error": type(err).__name__,
                "path": request.path,
                "hookInstance": call_state().hook_instance,
            },
        )
        return outcome_response(500, "The service failed unexpectedly; the error has been logged.", "exception")
