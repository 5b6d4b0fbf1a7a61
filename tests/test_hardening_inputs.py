"""Inputs that a JSON parser accepts but that would fail at the database or deep in a
library. Each is refused up front (400, or the 412 path for a fetched page) with an
OperationOutcome, before anything is stored."""
from __future__ import annotations

import json

import pytest
import responses
from sqlalchemy import func, select

from cds_service.storage import db
from cds_testing.apps import written_engine
from cds_testing.fhir_factory import ascvd_prefetch, hook_request
from cds_testing.spec_rules import assert_operation_outcome

SERVICE = "/cds-services/ascvd-10y-risk"
FHIR = "https://ehr.example.org/fhir/R4"


def _count(app, table) -> int:
    with written_engine(app).connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def _raw_post(client, url, text: str):
    return client.post(url, data=text.encode("utf-8", "surrogatepass"), content_type="application/json")


@pytest.mark.parametrize("hook_instance", ["a" * 101, "abc\u0000def", "abc def", "../../x", "x\ud800"])
def test_hook_instance_outside_the_uuid_alphabet_is_400(app, hook_instance):
    """A hookInstance keys stored rows and travels in links: over 100 characters, a NUL, a space, a
    slash or a lone surrogate is a 400 naming it (on PostgreSQL the first two were 200 without rows)."""
    client = app.test_client()
    body = hook_request(prefetch=ascvd_prefetch())
    body["hookInstance"] = hook_instance
    resp = _raw_post(client, SERVICE, json.dumps(body))
    assert_operation_outcome(resp, 400, "hookInstance")
    assert _count(app, db.cards_issued) == 0


def test_a_uuid_hook_instance_of_100_characters_is_accepted(app):
    body = hook_request(prefetch=ascvd_prefetch())
    body["hookInstance"] = "urn:uuid:" + "a" * 91
    assert app.test_client().post(SERVICE, json=body).status_code == 200


@pytest.mark.parametrize("text, where", [('{"hook": NaN}', "hook"), ('{"x": [Infinity]}', "x[0]"), ('{"x": -Infinity}', "x"),
                                         ('{"x": 1e400}', "x"), ('{"x": ' + "9" * 400 + "}", "x")])
@pytest.mark.parametrize("url", [SERVICE, f"{SERVICE}/feedback"])
def test_non_finite_numbers_are_invalid_json(app, text, where, url):
    """RFC 8259 §6: NaN and Infinity are not JSON, and 1e400 would decode to infinity; on every endpoint."""
    assert_operation_outcome(_raw_post(app.test_client(), url, text), 400, where)


def _feedback(**changes) -> dict:
    item = {"card": "4e0a3a1e-3283-4575-ab82-028d55fe2719", "outcome": "overridden",
            "outcomeTimestamp": "2021-12-11T10:05:31Z",
            "overrideReason": {"reason": {"system": "http://example.org/reasons", "code": "r1"},
                               "userComment": "comment"}}
    item.update(changes)
    return {"feedback": [item]}


@pytest.mark.parametrize("changes, expression", [
    ({"card": "c" * 65}, "feedback[0].card"),
    ({"card": "c\u0000"}, "feedback[0].card"),
    ({"outcomeTimestamp": "2021-12-11T10:05:31." + "1" * 40 + "Z"}, "feedback[0].outcomeTimestamp"),
    ({"overrideReason": {"userComment": "x" * 4001}}, "feedback[0].overrideReason.userComment"),
    ({"overrideReason": {"userComment": "a\u0000b"}}, "feedback[0].overrideReason.userComment"),
    ({"overrideReason": {"reason": {"system": "s" * 201, "code": "r1"}}}, "feedback[0].overrideReason.reason.system"),
    ({"overrideReason": {"reason": {"system": "http://x", "code": "c" * 101}}}, "feedback[0].overrideReason.reason.code"),
    ({"overrideReason": {"reason": {"system": "http://x", "code": "r", "display": "d" * 301}}},
     "feedback[0].overrideReason.reason.display"),
    ({"outcome": "accepted", "overrideReason": None, "acceptedSuggestions": [{"id": "s" * 65}]},
     "feedback[0].acceptedSuggestions[0].id"),
])
def test_feedback_fields_beyond_their_columns_are_400(app, changes, expression):
    """On PostgreSQL these were 500 (DataError at insert); now 400 naming the member, nothing stored."""
    body = _feedback(**changes)
    if changes.get("overrideReason", 1) is None:
        del body["feedback"][0]["overrideReason"]
    resp = _raw_post(app.test_client(), f"{SERVICE}/feedback", json.dumps(body))
    assert_operation_outcome(resp, 400, expression)
    assert _count(app, db.feedback) == 0


def test_a_feedback_comment_with_a_lone_surrogate_is_400_not_500(app):
    """SQLite's driver cannot encode a lone surrogate: it was a 500 at insert."""
    text = json.dumps(_feedback()).replace("comment", "bad \\ud800 comment")
    assert_operation_outcome(_raw_post(app.test_client(), f"{SERVICE}/feedback", text), 400,
                             "feedback[0].overrideReason.userComment")


def test_a_nul_in_the_url_path_still_gets_its_audit_row(app):
    """Audit values from the wire (the service id of an unknown path) are made storable, not lost."""
    resp = app.test_client().get("/cds-services/abc%00def/feedback")
    assert resp.status_code in (404, 405)
    with written_engine(app).connect() as conn:
        (service_id,) = conn.execute(select(db.audit.c.service_id)).one()
    assert "\x00" not in service_id and service_id.startswith("abc")


@responses.activate
def test_a_fetched_page_nested_100000_deep_takes_the_412_path(make_app):
    """Item 8: a FHIR answer that exhausts the JSON parser's recursion was a 500 (RecursionError); it
    is now a failed read of that key, so a required key gives PREFETCH-5's 412 with an OperationOutcome."""
    app = make_app(fhir_servers=[FHIR])
    deep = '{"resourceType": "Patient", "id": "p1", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    responses.get(f"{FHIR}/Patient/p1", body=deep, content_type="application/fhir+json")
    body = hook_request(prefetch={k: v for k, v in ascvd_prefetch().items() if k != "patient"})
    body["fhirServer"] = FHIR
    resp = app.test_client().post(SERVICE, json=body)
    assert_operation_outcome(resp, 412)
