"""One audit row per call: who called (iss, sub, tenant), what (endpoint kind,
service, hook, hookInstance), about whom (the patient id as a salted hash, never the id itself),
and how it ended (status, outcome, latency).

Rows are written in `after_request`, which runs for every answer including the 400/401/404/412/
413/500 produced by the error handlers; `teardown_request` catches the rare call that ends
without a response. Health probes, metrics, static files and CORS preflights are not calls of an
EHR and are not audited (they would drown the table).
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass, field

from flask import Flask, Response, current_app, request

from cds_service.http.call_state import CallState, call_state
from cds_service.storage import db
from cds_service.storage.call_writes import queue_rows
from cds_service.wire_text import clipped

log = logging.getLogger("cds_service.storage.audit")

# Endpoint kind from the path, so that calls refused before routing (404, 405, 413) are classified too.
_CDS_PATH = re.compile(r"^/cds-services(?:/(?P<id>[^/]+)(?P<feedback>/feedback)?)?/?$")
_NOT_AUDITED_PATHS = ("/healthz", "/readyz", "/metrics")
_OUTCOMES = {200: "ok", 400: "invalid-request", 401: "unauthorized", 404: "not-found", 405: "method-not-allowed",
             412: "prefetch-unavailable", 413: "too-large", 503: "unavailable"}
# Column widths of `db.audit` (PostgreSQL enforces them; values from the wire are cut to fit).
_WIDTHS = {"iss": 500, "sub": 500, "tenant": 200, "service_id": 64, "hook": 64, "hook_instance": 100, "outcome": 64}


@dataclass(frozen=True)
class PatientHasher:
    """HMAC-SHA256 of the patient id with a secret salt: rows of one patient can be linked by whoever
    holds the salt, and a leaked table alone does not reveal which patient a row is about."""

    salt: bytes
    # The HMAC keyed once: each id continues a copy of it (the `hmac` documentation's way for messages that
    # share a prefix), half the cost of keying a new one, for the three ids every call hashes.
    _keyed: hmac.HMAC = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_keyed", hmac.new(self.salt, digestmod=hashlib.sha256))

    def __call__(self, patient_id: str | None) -> str | None:
        if not patient_id:
            return None
        mac = self._keyed.copy()
        mac.update(patient_id.encode("utf-8"))
        return mac.hexdigest()


def make_hasher(audit_salt: str) -> PatientHasher:
    if audit_salt:
        return PatientHasher(audit_salt.encode("utf-8"))
    log.warning("audit_salt is not set: patient ids in the audit table are hashed with a random salt of this process "
                "(rows cannot be linked across restarts); set audit_salt in production",
                extra={"event": "audit_salt_random", "setting": "audit_salt"})
    return PatientHasher(secrets.token_bytes(32))


def init_audit(app: Flask) -> None:
    """The app's patient-id hasher; `write_audit_row` and `audit_unanswered` (request hooks) write the rows."""
    app.extensions["cds_audit"] = make_hasher(app.extensions["cds"].settings.audit_salt)


def write_audit_row(resp: Response) -> Response:
    """After-request hook: queue the call's audit row (so it runs before the writes are flushed)."""
    _write(resp.status_code)
    return resp


def audit_unanswered(exc: BaseException | None) -> None:
    """Teardown hook: a call that ended in an exception no handler turned into a response still gets
    its row (as a 500), queued before the teardown flush."""
    if exc is not None:
        _write(500)


def _audited(state: CallState, path: str) -> bool:
    if state.audited:
        return False
    if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
        return False  # CORS preflight: no data, no credentials
    return not (path in _NOT_AUDITED_PATHS or path.startswith("/static/"))


def _write(status: int) -> None:
    state, path = call_state(), request.path
    if not _audited(state, path):
        return
    state.audited = True
    identity, hasher = state.identity, current_app.extensions["cds_audit"]
    match = _CDS_PATH.match(path)
    kind = "other" if not match else "discovery" if not match["id"] else "feedback" if match["feedback"] else "service"
    outcome = _OUTCOMES.get(status, "error" if status >= 500 else f"http-{status}")
    if status == 401 and state.auth_failure:
        outcome = f"unauthorized: {state.auth_failure}"
    row = {
        "at": state.started_at,
        "iss": getattr(identity, "iss", None),
        "sub": getattr(identity, "sub", None),
        "tenant": getattr(identity, "tenant", None),
        "endpoint": kind,
        "service_id": state.service_id or (match["id"] if match else None),
        "hook": state.hook,
        "hook_instance": state.hook_instance,
        "patient_hash": hasher(state.patient_id),
        "status": status,
        "outcome": outcome,
        "latency_ms": round((time.perf_counter() - state.started) * 1000, 3),
    }
    for name, width in _WIDTHS.items():
        row[name] = clipped(row[name], width)  # a NUL from a URL path or a claim must not lose the row
    queue_rows(db.insert_statement_of(db.audit), row)  # committed with the call's other rows
