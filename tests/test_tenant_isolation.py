"""Tenant isolation through the HTTP surface: two trusted EHRs (the Sandbox- and Epic-style clients of
cds_testing.security_support) share one service. A hookInstance and a card uuid name a record only
within the client that sent them; feedback is accepted only for cards issued to the reporting
client; `/analytics` is for operators only and reports per client.
"""
from __future__ import annotations

import base64
import json

import pytest
import responses
from sqlalchemy import func, select

from cds_service.storage import db
from cds_testing import security_support as s
from cds_testing.apps import written_engine
from cds_testing.fhir_factory import ascvd_prefetch, hook_request
from cds_testing.spec_rules import assert_operation_outcome

SERVICE = f"/cds-services/{s.SERVICE_ID}"
OPERATOR_TOKEN = "operator-token-0123456789"
# The same hookInstance from both EHRs (hook_request's fixed one), with different patients.
LOW = ascvd_prefetch()  # 61-year-old woman, normal lipids: low risk
HIGH = ascvd_prefetch(gender="male", birth_date="1956-01-01", tc=280, hdl=32, sbp=165, smoker=True)


@pytest.fixture
def app(make_app, tmp_path):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(s.SANDBOX_JKU, json=s.jwks(s.sandbox_key()))
        mock.get(s.EPIC_JKU, json=s.jwks(s.epic_key()))
        yield make_app(**s.auth_settings(tmp_path, analytics_token=OPERATOR_TOKEN))


def _call(app, prefetch, maker) -> dict:
    resp = app.test_client().post(SERVICE, json=hook_request(prefetch=prefetch), headers=s.bearer(maker(s.SERVICE_AUD)))
    assert resp.status_code == 200, resp.data
    (card,) = resp.get_json()["cards"]
    return card


def _feedback(app, card: dict, maker, outcome="overridden"):
    item = {"card": card["uuid"], "outcome": outcome, "outcomeTimestamp": "2026-06-01T10:00:00Z"}
    if outcome == "accepted":
        item["acceptedSuggestions"] = [{"id": card["suggestions"][0]["uuid"]}]
    else:
        item["overrideReason"] = {"reason": card["overrideReasons"][0], "userComment": "free text, maybe a name"}
    return app.test_client().post(f"{SERVICE}/feedback", json={"feedback": [item]},
                                  headers=s.bearer(maker(s.FEEDBACK_AUD)))


def _score(card: dict) -> float:
    return card["extension"]["org.cdsml.prediction"]["score"]


def _absolute(card: dict) -> str:
    return next(link["url"] for link in card["links"] if link["type"] == "absolute").removeprefix(s.BASE)


def _count(app, table, **where) -> int:
    query = select(func.count()).select_from(table).where(*(table.c[k] == v for k, v in where.items()))
    with written_engine(app).connect() as conn:
        return conn.execute(query).scalar()


def test_two_clients_sending_the_same_hook_instance_get_separate_explanations_and_issued_cards(app):
    """Was: the second EHR's call overwrote the first one's explanation page (20.2 % became 45.6 %)."""
    a = _call(app, LOW, s.sandbox_token)
    b = _call(app, HIGH, s.epic_token)
    assert a["uuid"] == b["uuid"] and _score(a) < 0.1 < _score(b)  # same hookInstance, same card uuid
    for card, other in ((a, b), (b, a)):
        page = app.test_client().get(_absolute(card)).get_data(as_text=True)
        assert f"{100 * _score(card):.1f}%" in page and f"{100 * _score(other):.1f}%" not in page
    assert _count(app, db.explanations) == 2
    assert _count(app, db.cards_issued, card_uuid=a["uuid"]) == 2
    assert _count(app, db.cards_issued, card_uuid=a["uuid"], iss=s.SANDBOX_ISS) == 1
    assert _count(app, db.cards_issued, card_uuid=a["uuid"], iss=s.EPIC_ISS) == 1


def test_feedback_on_another_clients_card_is_404_and_counted_nowhere(app):
    card = _call(app, HIGH, s.sandbox_token)
    assert_operation_outcome(_feedback(app, card, s.epic_token), 404, "feedback[0].card")
    assert _count(app, db.feedback) == 0
    assert _feedback(app, card, s.sandbox_token).status_code == 200  # its own client may report on it
    assert _count(app, db.feedback, iss=s.SANDBOX_ISS) == 1 and _count(app, db.feedback) == 1
    report = _analytics(app, {"Authorization": f"Bearer {OPERATOR_TOKEN}"}, "?format=json").get_json()["report"]
    assert [(r["iss"], r["cards_issued"], r["overridden"]) for r in report] == [(s.SANDBOX_ISS, 1, 1)]


def _analytics(app, headers=None, query=""):
    return app.test_client().get(f"/analytics{query}", headers=headers or {})


def _basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize("query", ["", "?format=json"])
def test_analytics_is_off_unless_an_operator_token_is_configured(make_app, query):
    """Was: open to anyone, with every client's override reasons."""
    app = make_app()
    assert _analytics(app, {"Authorization": "Bearer anything-at-all-here"}, query).status_code == 404


@pytest.mark.parametrize("query", ["", "?format=json"])
@pytest.mark.parametrize("headers", [None, {"Authorization": "Bearer wrong-token-0123456789"},
                                     _basic("operator", "wrong-token-0123456789"), _basic("someone", OPERATOR_TOKEN),
                                     {"Authorization": f"Bearer {OPERATOR_TOKEN}x"}, {"Authorization": "Basic %%%"},
                                     {"Authorization": OPERATOR_TOKEN}])
def test_analytics_without_the_operator_token_is_401(app, headers, query):
    _call(app, HIGH, s.sandbox_token)
    resp = _analytics(app, headers, query)
    assert resp.status_code == 401 and resp.headers["WWW-Authenticate"].startswith('Basic realm=')
    assert s.SANDBOX_ISS not in resp.get_data(as_text=True) and resp.headers["Cache-Control"] == "no-store"


def test_analytics_with_the_operator_token_reports_each_client_apart(app):
    a, b = _call(app, HIGH, s.sandbox_token), _call(app, LOW, s.epic_token)  # one card uuid, two clients
    assert _feedback(app, a, s.sandbox_token, "accepted").status_code == 200
    assert _feedback(app, b, s.epic_token).status_code == 200
    for headers in ({"Authorization": f"Bearer {OPERATOR_TOKEN}"}, _basic("operator", OPERATOR_TOKEN)):
        resp = _analytics(app, headers, "?format=json")
        assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
        rows = {r["iss"]: r for r in resp.get_json()["report"]}
        assert set(rows) == {s.SANDBOX_ISS, s.EPIC_ISS}
        assert (rows[s.SANDBOX_ISS]["cards_issued"], rows[s.SANDBOX_ISS]["accepted"], rows[s.SANDBOX_ISS]["overridden"]) == (1, 1, 0)
        assert (rows[s.EPIC_ISS]["cards_issued"], rows[s.EPIC_ISS]["accepted"], rows[s.EPIC_ISS]["overridden"]) == (1, 0, 1)
        assert rows[s.EPIC_ISS]["override_reasons"][0]["code"] == b["overrideReasons"][0]["code"]
        assert not rows[s.SANDBOX_ISS]["override_reasons"]
    html = _analytics(app, _basic("operator", OPERATOR_TOKEN)).get_data(as_text=True)
    assert s.SANDBOX_ISS in html and s.EPIC_ISS in html and "maybe a name" not in html  # comments never shown
    # One client's report, e.g. to hand to that EHR: its rows only.
    query = "?format=json&" + "iss=" + s.EPIC_ISS
    (only,) = _analytics(app, {"Authorization": f"Bearer {OPERATOR_TOKEN}"}, query).get_json()["report"]
    assert (only["iss"], only["overridden"]) == (s.EPIC_ISS, 1)
    page = _analytics(app, {"Authorization": f"Bearer {OPERATOR_TOKEN}"}, f"?iss={s.EPIC_ISS}").get_data(as_text=True)
    assert s.EPIC_ISS in page and s.SANDBOX_ISS not in page
    assert json.loads(_analytics(app, {"Authorization": f"Bearer {OPERATOR_TOKEN}"},
                                 "?format=json&iss=https://nobody.example").get_data())["report"] == []
