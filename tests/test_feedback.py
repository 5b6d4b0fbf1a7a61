"""Feedback endpoint: FEEDBACK-2..5, durable storage, duplicates tolerated."""
import json

import pytest
from sqlalchemy import func, select

from cds_service.storage import db
from cds_testing.apps import written_engine
from cds_testing.paths import SPEC_EXAMPLES
from cds_testing.security_support import issue_card
from cds_testing.spec_rules import assert_operation_outcome

URL = "/cds-services/ascvd-10y-risk/feedback"


def rows(app):
    with written_engine(app).connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(db.feedback))]


@pytest.mark.parametrize("example", ["feedback-accepted.json", "feedback-overridden-no-reason.json",
                                     "feedback-overridden-with-reason.json"])
def test_feedback2_spec_examples_are_stored(app, example):
    body = json.loads((SPEC_EXAMPLES / "spec-2.0.1" / example).read_text())
    issue_card(app, *(i["card"] for i in body["feedback"]))
    resp = app.test_client().post(URL, json=body)
    assert resp.status_code == 200 and resp.data == b""  # FEEDBACK-5
    (row,) = rows(app)
    item = body["feedback"][0]
    assert row["card_uuid"] == item["card"] and row["outcome"] == item["outcome"]
    assert row["outcome_timestamp"] == item["outcomeTimestamp"] and row["service_id"] == "ascvd-10y-risk"


def test_feedback4_override_reason_coding_without_display_is_kept(app):
    body = json.loads((SPEC_EXAMPLES / "spec-2.0.1" / "feedback-overridden-with-reason.json").read_text())
    issue_card(app, body["feedback"][0]["card"])
    app.test_client().post(URL, json=body)
    (row,) = rows(app)
    assert row["override_code"] == "d7ecf885" and row["override_display"] is None
    assert row["override_comment"] == "A comment entered by the clinician."


def test_feedback3_duplicate_reports_are_tolerated_and_stored_once(app):
    body = json.loads((SPEC_EXAMPLES / "spec-2.0.1" / "feedback-accepted.json").read_text())
    issue_card(app, body["feedback"][0]["card"])
    client = app.test_client()
    assert client.post(URL, json=body).status_code == 200
    assert client.post(URL, json=body).status_code == 200
    body["feedback"].append(body["feedback"][0])  # the same item twice in one batch
    assert client.post(URL, json=body).status_code == 200
    assert len(rows(app)) == 1


def test_feedback_durable_across_app_instances(make_app, tmp_path):
    body = json.loads((SPEC_EXAMPLES / "spec-2.0.1" / "feedback-overridden-no-reason.json").read_text())
    first = make_app()
    issue_card(first, body["feedback"][0]["card"])
    first.test_client().post(URL, json=body)
    again = make_app()  # a restart: same database file
    with written_engine(again).connect() as conn:
        assert conn.execute(select(func.count()).select_from(db.feedback)).scalar() == 1


def _item(**changes):
    item = {"card": "4e0a3a1e-3283-4575-ab82-028d55fe2719", "outcome": "accepted",
            "acceptedSuggestions": [{"id": "e56e1945-20b3-4393-8503-a1a20fd73152"}], "outcomeTimestamp": "2021-12-11T10:05:31Z"}
    item.update(changes)
    return {k: v for k, v in item.items() if v is not None}


@pytest.mark.parametrize("body,expression", [
    ({"feedback": [_item(acceptedSuggestions=None)]}, "feedback[0].acceptedSuggestions"),  # cds-fb-2
    ({"feedback": [_item(acceptedSuggestions=[])]}, "feedback[0].acceptedSuggestions"),
    ({"feedback": [_item(outcome="ignored")]}, "feedback[0].outcome"),  # cds-fb-1
    ({"feedback": [_item(outcomeTimestamp=None)]}, "feedback[0].outcomeTimestamp"),
    ({"feedback": [_item(outcomeTimestamp="yesterday")]}, "feedback[0].outcomeTimestamp"),
    ({"feedback": [_item(card=None)]}, "feedback[0].card"),
    ({"feedback": [_item(outcome="overridden", acceptedSuggestions=None, overrideReason={})]}, "feedback[0].overrideReason"),  # cds-fb-3
    ({"feedback": [_item(outcome="overridden", acceptedSuggestions=None, overrideReason={"reason": {"code": "x"}})]},
     "feedback[0].overrideReason.reason"),
    ({"feedback": []}, "feedback"),
    ({"cards": []}, "feedback"),
])
def test_feedback2_invalid_bodies_are_400(app, body, expression):
    resp = app.test_client().post(URL, json=body)
    assert_operation_outcome(resp, 400, expression)
    assert rows(app) == []  # nothing half-stored


def test_feedback_batch_with_one_bad_item_stores_nothing(app):
    body = {"feedback": [_item(), _item(outcome="bad")]}
    assert_operation_outcome(app.test_client().post(URL, json=body), 400, "feedback[1].outcome")
    assert rows(app) == []


def test_feedback_for_a_card_never_issued_is_404_and_not_stored(app):
    """Tenant isolation: feedback is accepted only for cards issued to the same client."""
    assert_operation_outcome(app.test_client().post(URL, json={"feedback": [_item(card="never-issued")]}), 404,
                             "feedback[0].card")
    assert rows(app) == []


def test_feedback_to_unknown_service_is_404(app):
    assert_operation_outcome(app.test_client().post("/cds-services/nope/feedback", json={"feedback": [_item()]}), 404)


def test_cards_issued_are_recorded_with_model_version(app):
    from cds_testing.fhir_factory import ascvd_prefetch, hook_request

    card = app.test_client().post("/cds-services/ascvd-10y-risk", json=hook_request(prefetch=ascvd_prefetch())).get_json()["cards"][0]
    with written_engine(app).connect() as conn:
        (row,) = conn.execute(select(db.cards_issued)).all()
    assert row.card_uuid == card["uuid"] and row.model == "pce-goff-2013" and row.model_version == "2013.1"
