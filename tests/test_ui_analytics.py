"""Feedback analytics: accept / override rates and override reasons per service and model version."""
from __future__ import annotations

import time

import pytest

from cds_service.feedback_request import FeedbackItem
from cds_service.storage import db
from cds_service.storage.analytics import feedback_report
from cds_service.storage.feedback import store_feedback

REASON = ("http://terminology.hl7.org/CodeSystem/cds-hooks-override-reasons", "patient-declined", "Patient declined")
OTHER = ("http://terminology.hl7.org/CodeSystem/cds-hooks-override-reasons", "not-applicable", "Not applicable")


@pytest.fixture
def engine(tmp_path):
    return db.make_engine(f"sqlite:///{tmp_path}/a.sqlite3")


def issue(engine, uuid, service="svc-a", model="m", version="1", at=None):
    db.insert_ignoring_duplicates(engine, db.cards_issued, [{
        "iss": "", "tenant": "", "card_uuid": uuid, "service_id": service, "hook_instance": "h", "model": model, "model_version": version,
        "indicator": "warning", "issued_at": at or time.time()}])


def fb(engine, card, outcome, ts="2026-01-01T10:00:00Z", reason=None, comment=None, service="svc-a"):
    accepted = ("s1",) if outcome == "accepted" else ()
    store_feedback(engine, service, ("", ""), [FeedbackItem(card, outcome, ts, accepted, reason, comment)])


def test_rates_and_reasons_per_service_and_model_version(engine):
    for i in range(4):
        issue(engine, f"a{i}", version="1")
    issue(engine, "b0", version="2")
    fb(engine, "a0", "accepted")
    fb(engine, "a0", "accepted", ts="2026-01-01T10:05:00Z")  # FEEDBACK-3: reported twice, counted once
    fb(engine, "a1", "overridden", reason=REASON, comment="talked it over with Mrs Smith")
    fb(engine, "a2", "overridden", reason=REASON)
    fb(engine, "a2", "overridden", reason=REASON, ts="2026-01-02T10:00:00Z")
    fb(engine, "b0", "overridden", reason=OTHER)
    report = {(r["service_id"], r["model_version"]): r for r in feedback_report(engine)}
    v1, v2 = report[("svc-a", "1")], report[("svc-a", "2")]
    assert (v1["cards_issued"], v1["cards_with_feedback"], v1["accepted"], v1["overridden"]) == (4, 3, 1, 2)
    assert v1["acceptance_rate"] == 0.25 and v1["override_rate"] == 0.5
    assert v1["override_reasons"] == [{"system": REASON[0], "code": "patient-declined", "display": "Patient declined", "cards": 2}]
    assert v1["override_comments"] == 1
    assert "Mrs Smith" not in repr(report)  # free text is counted, never reported
    assert (v2["cards_issued"], v2["overridden"], v2["override_reasons"][0]["code"]) == (1, 1, "not-applicable")


def test_feedback_for_a_card_not_issued_to_the_client_is_refused_and_counted_nowhere(engine):
    """Feedback naming a card this client was never issued is refused (404) as a whole."""
    from cds_service.errors import UnknownCard

    issue(engine, "known")
    with pytest.raises(UnknownCard):
        store_feedback(engine, "svc-a", ("", ""), [FeedbackItem("known", "accepted", "2026-01-01T10:00:00Z", ("s1",)),
                                                  FeedbackItem("never-issued-here", "overridden", "2026-01-01T10:00:00Z")])
    with pytest.raises(UnknownCard):  # issued, but to another client
        store_feedback(engine, "svc-a", ("https://other-ehr.example", ""),
                       [FeedbackItem("known", "overridden", "2026-01-01T10:00:00Z")])
    (row,) = feedback_report(engine)
    assert (row["cards_issued"], row["cards_with_feedback"], row["accepted"], row["overridden"]) == (1, 0, 0, 0)


def test_since_limits_to_recent_cards(engine):
    issue(engine, "old", at=1000.0)
    issue(engine, "new", at=2000.0)
    fb(engine, "old", "accepted")
    (row,) = feedback_report(engine, since=1500.0)
    assert row["cards_issued"] == 1 and row["accepted"] == 0


def test_empty_database_gives_an_empty_report(engine):
    assert feedback_report(engine) == []


TOKEN = "operator-token-0123456789"


@pytest.fixture
def app(make_app):
    return make_app(analytics_token=TOKEN)


def test_analytics_page_after_real_feedback(app):
    """Cards issued by a real call, feedback through the real endpoint (FEEDBACK-2), then the page and its JSON."""
    client = app.test_client()
    from cds_service.ehr.contexts import build_context, now_utc
    from cds_service.ehr.hook_calls import build_call
    from cds_service.ehr.patients import DemoPatients, patient_from_resources

    bound = app.extensions["cds"].services["ascvd-10y-risk"][0]
    resources = DemoPatients().resources("demo-19")
    call = build_call(bound, resources, build_context("patient-view", patient_from_resources(resources), now=now_utc()))
    card = client.post("/cds-services/ascvd-10y-risk", json=call.body).get_json()["cards"][0]
    item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-01-01T10:00:00Z",
            "overrideReason": {"reason": card["overrideReasons"][0]}}
    assert client.post("/cds-services/ascvd-10y-risk/feedback", json={"feedback": [item]}).status_code == 200
    operator = {"Authorization": f"Bearer {TOKEN}"}
    html = client.get("/analytics", headers=operator).get_data(as_text=True)
    assert "ascvd-10y-risk" in html and "pce-goff-2013" in html and card["overrideReasons"][0]["display"] in html
    (row,) = client.get("/analytics?format=json", headers=operator).get_json()["report"]
    assert (row["cards_issued"], row["overridden"], row["override_rate"]) == (1, 1, 1.0)
