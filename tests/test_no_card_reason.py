"""Why a call gave no card: `org.cdsml.no-card-reason`, returned only to a caller that asks for it in its
request's `extension` (EXT-1/2/3). An EHR that does not ask gets exactly `{"cards": []}` (RESP-1/2)."""
from __future__ import annotations

import pytest

from cds_service.conformance import rules
from cds_service.ehr.contexts import build_context, now_utc
from cds_service.ehr.hook_calls import hook_request, local_prefetch
from cds_service.ehr.patients import DemoPatients, encounter_list
from cds_service.hook_request import NO_CARD_REASON
from cds_testing.apps import service_file
from cds_testing.order_helpers import birth_for, bundle, draft, materialize, obs

ASK = {"extension": {NO_CARD_REASON: True}}


@pytest.fixture(scope="module")
def demo():
    return DemoPatients()


@pytest.fixture(scope="module")
def services_client(tmp_path_factory):
    from cds_testing.apps import build_app

    return build_app(tmp_path_factory.mktemp("no-card"), ["post-mi-mortality", "renal-dosing"]).test_client()


def discharge_body(client, demo, pid: str, encounter_id: str | None = None, **extra) -> dict:
    """The request the simulator and `cds-service fire` send: context, and prefetch from the patient's data."""
    patient = demo.patient(pid)
    context = build_context("encounter-discharge", patient, now=now_utc(), encounter_id=encounter_id)
    templates = next(s for s in client.get("/cds-services").get_json()["services"] if s["id"] == "post-mi-mortality")["prefetch"]
    prefetch, _ = local_prefetch(templates, context, patient.resources)
    return {**hook_request("encounter-discharge", context, prefetch=prefetch), **extra}


def clinic_visit(demo, pid: str) -> str:
    return next(e for e, cls, _ in encounter_list(demo.patient(pid).resources) if cls == "AMB")


def call(client, service: str, body: dict) -> dict:
    resp = client.post(f"/cds-services/{service}", json=body)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def test_resp2_an_ehr_that_does_not_ask_gets_exactly_no_cards(services_client, demo):
    """demo-02's finished clinic visit is not an MI stay: no card, and nothing else in the answer."""
    body = discharge_body(services_client, demo, "demo-02", clinic_visit(demo, "demo-02"))
    assert call(services_client, "post-mi-mortality", body) == {"cards": []}


def test_the_reason_names_the_population_rule_and_the_value_that_failed(services_client, demo):
    visit = clinic_visit(demo, "demo-02")
    answer = call(services_client, "post-mi-mortality", discharge_body(services_client, demo, "demo-02", visit, **ASK))
    assert answer["cards"] == [] and set(answer) == {"cards", "extension"}
    why = answer["extension"][NO_CARD_REASON]
    assert why["service"] == "post-mi-mortality" and why["hook"] == "encounter-discharge" and why["encounterId"] == visit
    (reason,) = why["reasons"]
    assert reason["kind"] == "outside-population" and reason["feature"] == "mi_this_encounter" and reason["value"] == 0
    assert reason["criterion"] == "discharged after an acute myocardial infarction" and reason["rule"] == "yes"
    assert reason["text"].startswith("outside the population 'discharged after an acute myocardial infarction': "
                                     "Acute myocardial infarction this stay is no (the service needs yes)")
    # EXT-1/2, GEN-2/4: the answer stays a conformant CDS Hooks response a client may ignore the extension of
    found = rules.check_service_response(200, "application/json", answer, where="post-mi-mortality")
    assert not [x for x in found.items if x.level != rules.PASS], found.items


def test_a_call_with_a_card_carries_no_reason(services_client, demo):
    """The default encounter at discharge is demo-02's inpatient stay: a card, and no response extension."""
    answer = call(services_client, "post-mi-mortality", discharge_body(services_client, demo, "demo-02", **ASK))
    assert len(answer["cards"]) == 1 and "extension" not in answer


@pytest.mark.parametrize("extension", [{NO_CARD_REASON: "yes"}, {NO_CARD_REASON: {"on": True}}, {"org.example.other": True}, ["x"]])
def test_only_an_explicit_true_asks(services_client, demo, extension):
    body = discharge_body(services_client, demo, "demo-02", clinic_visit(demo, "demo-02"), extension=extension)
    assert call(services_client, "post-mi-mortality", body) == {"cards": []}


def test_a_population_rule_that_could_not_be_checked_and_a_missing_input_are_named(make_app, demo):
    """No birth date (age unknown) and no vital signs, in a service configured to stay silent when inputs
    are missing: the reasons say which rule could not be checked and which inputs were missing."""
    text = service_file("post-mi-mortality").replace('on_missing = "card"', 'on_missing = "silent"', 1)
    client = make_app(services={"post-mi-mortality": text}).test_client()
    body = discharge_body(client, demo, "demo-02", **ASK)
    body["prefetch"]["patient"] = {k: v for k, v in body["prefetch"]["patient"].items() if k != "birthDate"}
    body["prefetch"]["vitals"] = None  # PREFETCH-6: known to hold nothing
    why = call(client, "post-mi-mortality", body)["extension"][NO_CARD_REASON]
    kinds = {(r["kind"], r.get("feature")) for r in why["reasons"]}
    assert ("population-not-checked", "age") in kinds
    assert {("missing-input", "heart_rate"), ("missing-input", "sbp")} <= kinds
    assert all(r["text"] for r in why["reasons"])


def test_an_order_service_names_the_orders_it_judged(services_client):
    """Nothing renally relevant among the orders: no rule stopped the service, its own rules found nothing."""
    amoxicillin = draft("x1", "amoxicillin 500 MG Oral Capsule", mg=500, per_day=3)
    body = {"hook": "order-sign", "hookInstance": "0b1e3c1e-4f0a-4c8e-9a77-1d2e3f4a5b6c", **ASK,
            "context": {"userId": "Practitioner/example", "patientId": "p1", "draftOrders": bundle(amoxicillin, type_="collection")},
            "prefetch": {"patient": {"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": birth_for(70)},
                         "creatinine": bundle(obs("cr", "2160-0", 1.0, "mg/dL")), "weight": bundle(obs("wt", "29463-7", 80, "kg")),
                         "conditions": None, "medications": None, "procedures": None}}
    why = call(services_client, "renal-dosing", materialize(body))["extension"][NO_CARD_REASON]
    assert [r["kind"] for r in why["reasons"]] == ["rules"] and "builder 'renal_dosing'" in why["reasons"][0]["text"]
    assert why["ordersJudged"] == ["amoxicillin 500 MG Oral Capsule"]
