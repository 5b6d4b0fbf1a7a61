"""Privacy and audit (SEC-10): no token, JWT or patient identifier in any log record,
whatever the outcome of the call; exactly one audit row per call; body size (413) and JSON nesting
(400) limits."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging

import pytest
import responses
import sqlalchemy as sa

from cds_service.storage import db
from cds_testing import security_support as s
from cds_testing.apps import written_engine
from cds_testing.fhir_factory import ascvd_prefetch, hook_request
from cds_testing.spec_rules import assert_operation_outcome

# Patient data that must never reach a log line (and the strings are distinctive enough to grep for).
PATIENT_ID = "pt-7731-qzx"
NAME_FAMILY, NAME_GIVEN = "Quackenbush", "Philomena"
BIRTH_DATE = "1958-07-23"
MRN = "MRN-99817263"
ADDRESS = "1428 Elmstreet Lane"
PHONE = "555-0199-321"
ACCESS_TOKEN = "fhir-access-token-5f2b9c7e0a"
SALT = "audit-test-salt"


def phi_patient() -> dict:
    return {"resourceType": "Patient", "id": PATIENT_ID, "gender": "female", "birthDate": BIRTH_DATE,
            "name": [{"family": NAME_FAMILY, "given": [NAME_GIVEN]}],
            "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": MRN}],
            "address": [{"line": [ADDRESS], "city": "Springfield"}], "telecom": [{"system": "phone", "value": PHONE}]}


def service_body(**changes) -> dict:
    prefetch = ascvd_prefetch(pid=PATIENT_ID)
    prefetch["patient"] = phi_patient()
    body = hook_request(prefetch=prefetch, pid=PATIENT_ID)
    body["fhirServer"] = "https://attacker.example/fhir"  # not allow-listed: its token must go nowhere
    body["fhirAuthorization"] = {"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 300,
                                 "scope": "patient/*.read", "subject": "cds-service"}
    body.update(changes)
    return body


class Everything(logging.Handler):
    """Keeps every record's full state: message, args, every attribute, and the JSON line we emit."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record):
        from cds_service.logs import JsonFormatter

        self.texts.append(json.dumps({k: repr(v) for k, v in record.__dict__.items()}))
        self.texts.append(record.getMessage())
        self.texts.append(JsonFormatter().format(record))
        if record.exc_info:
            self.texts.append(logging.Formatter().formatException(record.exc_info))


@pytest.fixture
def capture_all_logs():
    handler = Everything()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def audit_rows(app) -> list[dict]:
    with written_engine(app).connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(db.audit).order_by(db.audit.c.id))]


def test_no_token_jwt_or_patient_identifier_in_any_log_record_and_one_audit_row_per_call(
        make_app, tmp_path, capture_all_logs, monkeypatch):
    """SEC-10: run successes and every error kind through the app with DEBUG logging
    on the root logger; no record holds a JWT (or a segment of one), the FHIR access token, the
    patient's name, birth date, MRN, address, phone or id; the audit table has exactly one row per call."""
    tokens: list[str] = []

    def tok(aud, maker=s.sandbox_token, **kw):
        tokens.append(maker(aud, **kw))
        return s.bearer(tokens[-1])

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(s.SANDBOX_JKU, json=s.jwks(s.sandbox_key()))
        mock.get(s.EPIC_JKU, json=s.jwks(s.epic_key()))
        app = make_app(**s.auth_settings(tmp_path, log_level="DEBUG", audit_salt=SALT, max_body_bytes=200_000))
        client = app.test_client()
        svc = f"/cds-services/{s.SERVICE_ID}"
        calls = []  # (expected status, endpoint kind, response)

        def go(expected, kind, resp):
            calls.append((expected, kind, resp.status_code))

        go(200, "discovery", client.get("/cds-services", headers=tok(s.DISCOVERY_AUD)))
        go(200, "service", client.post(svc, json=service_body(), headers=tok(s.SERVICE_AUD)))
        go(200, "service", client.post(svc, json=service_body(), headers=tok(s.SERVICE_AUD, s.epic_token)))
        s.issue_card(app, "4e0a3a1e-3283-4575-ab82-028d55fe2719", iss=s.SANDBOX_ISS)
        go(200, "feedback", client.post(f"{svc}/feedback", headers=tok(s.FEEDBACK_AUD), json={"feedback": [{
            "card": "4e0a3a1e-3283-4575-ab82-028d55fe2719", "outcome": "overridden",
            "outcomeTimestamp": "2026-01-01T10:00:00Z", "overrideReason": {"userComment": f"{NAME_FAMILY} {MRN}"}}]}))
        replayed = tokens[1]
        go(401, "service", client.post(svc, json=service_body(), headers=s.bearer(replayed)))
        go(401, "service", client.post(svc, json=service_body(), headers=tok(s.DISCOVERY_AUD)))
        go(401, "service", client.post(svc, json=service_body(), headers={"Authorization": f"Basic {ACCESS_TOKEN}"}))
        # (an untrusted token's own iss/jti may be logged, SEC-10; they are protocol fields, not patient data)
        go(401, "discovery", client.get("/cds-services", headers=s.bearer(s.tamper(tokens[0], iss="https://x.example"))))
        # 400: a body the parser rejects, with PHI inside it
        go(400, "service", client.post(svc, json=service_body(context={"patientId": MRN, "userId": NAME_FAMILY}),
                                       headers=tok(s.SERVICE_AUD)))
        go(400, "service", client.post(svc, data=f'{{"hook": "{NAME_FAMILY}", "x": [{BIRTH_DATE}',
                                       content_type="application/json", headers=tok(s.SERVICE_AUD)))
        deep = "[" * 100 + "]" * 100
        go(400, "service", client.post(svc, data=deep, content_type="application/json", headers=tok(s.SERVICE_AUD)))
        # 404 and 405
        go(404, "service", client.post("/cds-services/no-such-service", json=service_body(), headers=tok(s.SERVICE_AUD)))
        go(405, "service", client.get(svc, headers=tok(s.SERVICE_AUD)))
        # 412: prefetch missing and the fhirServer is not allow-listed, so no FHIR access
        body = service_body()
        del body["prefetch"]
        go(412, "service", client.post(svc, json=body, headers=tok(s.SERVICE_AUD)))
        # 413: a body over max_body_bytes
        big = service_body()
        big["padding"] = f"{NAME_FAMILY} {MRN} " * 20_000
        go(413, "service", client.post(svc, json=big, headers=tok(s.SERVICE_AUD)))
        # 500: an unexpected failure whose message quotes patient data
        import cds_service.http.views as api

        def explode(*args, **kwargs):
            raise RuntimeError(f"model crashed on {NAME_GIVEN} {NAME_FAMILY} {BIRTH_DATE} {MRN} {ADDRESS}")

        monkeypatch.setattr(api, "invoke", explode)
        go(500, "service", client.post(svc, json=service_body(), headers=tok(s.SERVICE_AUD)))

    assert [c[0] for c in calls] == [c[2] for c in calls]

    # 1. Logs: not one secret or identifier, whole or in part.
    logs = "\n".join(capture_all_logs.texts)
    assert "JWT rejected" in logs and '"event":"call"' in logs  # the capture did see our records
    secrets = [ACCESS_TOKEN, NAME_FAMILY, NAME_GIVEN, BIRTH_DATE, MRN, ADDRESS, PHONE, PATIENT_ID]
    for token in tokens:
        secrets += [token, *[seg for seg in token.split(".") if len(seg) > 8]]
    leaked = [x for x in secrets if x in logs]
    assert leaked == []

    # 2. Audit: exactly one row per call, in order, with the right kind and status.
    rows = audit_rows(app)
    assert [(r["endpoint"], r["status"]) for r in rows] == [(kind, status) for status, kind, _ in calls]
    ok = rows[1]
    assert ok["iss"] == s.SANDBOX_ISS and ok["sub"] is None and ok["hook"] == "patient-view"
    assert ok["hook_instance"] == "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea" and ok["outcome"] == "ok"
    assert ok["patient_hash"] == hmac.new(SALT.encode(), PATIENT_ID.encode(), hashlib.sha256).hexdigest()
    assert ok["latency_ms"] > 0 and ok["at"] > 0
    epic = rows[2]
    assert epic["iss"] == s.EPIC_ISS and epic["sub"] == s.EPIC_CLIENT_ID
    assert rows[4]["outcome"] == "unauthorized: jti replayed" and rows[4]["iss"] is None
    assert [r["outcome"] for r in rows[-3:]] == ["prefetch-unavailable", "too-large", "error"]
    assert rows[-3]["patient_hash"] == ok["patient_hash"]  # the 412 is linked to the same patient
    everything = json.dumps(rows, default=str)
    assert not [x for x in secrets if x in everything]


def test_audit_rows_in_development_mode_and_for_non_cds_paths(make_app):
    """Every call is audited, also without authentication; health probes and preflights are not calls."""
    app = make_app(services=[s.SERVICE_ID], cors_origins=["https://sandbox.cds-hooks.org"])
    client = app.test_client()
    client.get("/cds-services")
    client.get("/healthz")
    client.get("/readyz")
    client.options("/cds-services", headers={"Origin": "https://sandbox.cds-hooks.org",
                                             "Access-Control-Request-Method": "GET"})
    client.get("/no-such-page")
    rows = audit_rows(app)
    assert [(r["endpoint"], r["status"], r["iss"]) for r in rows] == [("discovery", 200, None), ("other", 404, None)]


def test_random_salt_is_announced_once_and_hashes_differ_between_processes(make_app, caplog):
    """Without audit_salt a random per-process salt is used, with one warning."""
    caplog.set_level(logging.WARNING)
    a = make_app(services=[s.SERVICE_ID])
    b = make_app(services=[s.SERVICE_ID], audit_salt="")
    warnings = [r for r in caplog.records if getattr(r, "event", None) == "audit_salt_random"]
    assert len(warnings) == 2  # one per app built, none per call
    a.test_client().get("/cds-services")
    assert len([r for r in caplog.records if getattr(r, "event", None) == "audit_salt_random"]) == 2
    ha, hb = a.extensions["cds_audit"], b.extensions["cds_audit"]
    assert ha("p1") != hb("p1") and len(ha("p1")) == 64 and ha(None) is None


def test_a_call_whose_audit_row_cannot_be_written_is_500_not_200(make_app, caplog, monkeypatch):
    """With `call_writes = "before-answer"`, every call is audited or refused. A failed
    write answers 500 with an OperationOutcome (never the cards), is logged, and counted in
    cds_storage_write_failures_total."""
    app = make_app(services=[s.SERVICE_ID], call_writes="before-answer")
    client = app.test_client()
    monkeypatch.setattr(db, "audit", sa.Table("no_such_table", sa.MetaData(), sa.Column("x", sa.Integer)))
    caplog.set_level(logging.ERROR)
    resp = client.post(f"/cds-services/{s.SERVICE_ID}", json=hook_request(prefetch=ascvd_prefetch()))
    issue = assert_operation_outcome(resp, 500)
    assert "cards" not in resp.get_data(as_text=True) and issue["code"] == "exception"
    assert any(getattr(r, "event", None) == "call_writes_failed" for r in caplog.records)
    monkeypatch.undo()
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'cds_storage_write_failures_total{route="/cds-services/<service_id>"} 1.0' in metrics
    assert 'route="/cds-services/<service_id>",service="ascvd-10y-risk",status="500"' in metrics


def test_after_answer_a_failed_write_is_counted_lost_and_refuses_the_next_calls(make_app, caplog, monkeypatch):
    """The default `call_writes = "after-answer"` (README, "Durability of call records"): the call was
    answered before its rows failed; they are counted in cds_call_rows_lost_total and logged, and the
    calls that follow are refused with 500 (never their cards) while the database keeps failing; once it
    writes again, calls are answered and recorded."""
    from cds_service.storage import call_writes
    from cds_service.storage.call_writes import committer

    app = make_app(services=[s.SERVICE_ID])
    client = app.test_client()
    body = hook_request(prefetch=ascvd_prefetch())
    monkeypatch.setattr(db, "audit", sa.Table("no_such_table", sa.MetaData(), sa.Column("x", sa.Integer)))
    caplog.set_level(logging.ERROR)
    assert client.post(f"/cds-services/{s.SERVICE_ID}", json=body).status_code == 200  # answered, then lost
    assert committer(app).settle()
    assert any(getattr(r, "event", None) == "call_writes_failed" for r in caplog.records)
    assert committer(app).rows_lost == 4  # the audit row, the issued card, its alert decision, the explanation record
    refused = client.post(f"/cds-services/{s.SERVICE_ID}", json=body)
    issue = assert_operation_outcome(refused, 500)
    assert "cards" not in refused.get_data(as_text=True) and issue["code"] == "exception"
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'cds_call_rows_lost_total{database="sqlite"} 4.0' in metrics
    assert 'cds_storage_write_failures_total{route="/cds-services/<service_id>"} 1.0' in metrics
    monkeypatch.undo()
    monkeypatch.setattr(call_writes, "RETRY_S", 0.0)  # the retry interval has passed
    assert client.post(f"/cds-services/{s.SERVICE_ID}", json=body).status_code == 200
    with written_engine(app).connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.audit)).scalar() >= 1


# --- body limits ---------------------------------------------------------------------------------

def test_body_over_the_size_limit_is_413_with_operation_outcome(make_app):
    """`max_body_bytes` → 413 (before parsing), with an OperationOutcome (ERR-3)."""
    client = make_app(services=[s.SERVICE_ID], max_body_bytes=10_000).test_client()
    body = hook_request(prefetch=ascvd_prefetch())
    body["padding"] = "x" * 20_000
    resp = client.post(f"/cds-services/{s.SERVICE_ID}", json=body)
    assert resp.status_code == 413
    assert resp.get_json()["resourceType"] == "OperationOutcome"
    assert resp.get_json()["issue"][0]["code"] == "too-costly"


def test_chunked_body_over_the_size_limit_is_413(make_app):
    """The limit holds when no Content-Length is sent (chunked transfer)."""
    import io

    client = make_app(services=[s.SERVICE_ID], max_body_bytes=10_000).test_client()
    resp = client.post(f"/cds-services/{s.SERVICE_ID}", input_stream=io.BytesIO(b'{"a":"' + b"x" * 50_000 + b'"}'),
                       headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                       environ_overrides={"wsgi.input_terminated": True})  # as gunicorn sets it for chunked bodies
    assert resp.status_code == 413


def test_feedback_body_over_the_size_limit_is_413(make_app):
    client = make_app(services=[s.SERVICE_ID], max_body_bytes=1_000).test_client()
    resp = client.post(f"/cds-services/{s.SERVICE_ID}/feedback", json={"feedback": [{"card": "x" * 5_000}]})
    assert resp.status_code == 413


@pytest.mark.parametrize("depth, status", [(64, 200), (65, 400), (100_000, 400)])
def test_json_nesting_limit_is_400(make_app, depth, status):
    """Nesting deeper than max_json_depth (64) → 400; a pathological depth does
    not crash the parser (RecursionError → 400, not 500)."""
    client = make_app(services=[s.SERVICE_ID], max_body_bytes=1_000_000).test_client()
    body = hook_request(prefetch=ascvd_prefetch())
    raw = json.dumps(body)[:-1] + ', "deep": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"  # object + arrays
    resp = client.post(f"/cds-services/{s.SERVICE_ID}", data=raw, content_type="application/json")
    assert resp.status_code == status, resp.data[:200]
    if status == 400:
        assert resp.get_json()["issue"][0]["expression"] == ["$"]


def test_the_session_log_guard_catches_a_jwt_and_a_bearer_header():
    """The guard in security_log_guard.py (run over the whole suite) is not a test that cannot fail."""
    from cds_testing.security_log_guard import SecretScanner

    scanner = SecretScanner()
    logger = logging.getLogger("cds_service.guard_selftest")
    logger.addHandler(scanner)
    logger.propagate = False  # these deliberate leaks must not reach the session-wide guard itself
    try:
        logger.warning("fine", extra={"event": "x", "iss": s.SANDBOX_ISS})
        assert scanner.hits == []
        logger.warning("oops %s", s.sandbox_token(s.DISCOVERY_AUD))
        logger.warning("call", extra={"event": "x", "reason": "Authorization: Bearer abcdefgh12345678"})
    finally:
        logger.removeHandler(scanner)
        logger.propagate = True
    assert len(scanner.hits) == 2
