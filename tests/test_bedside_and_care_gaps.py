"""Bedside scores at encounter-start (deterioration-scores: NEWS2 + qSOFA, HOOK-ES-*) and care gaps at
appointment-book (care-gaps, HOOK-AB-*). Cards are checked against CARD-1..5, SRC-1, SUGG-1, ACT-1,
OVR-1 and GEN-2 on the JSON the endpoint returns."""
from __future__ import annotations

import json

import pytest

from cds_testing.order_helpers import EXT, actions, bundle, fixture, obs, post, predictions, when
from cds_testing.paths import SPEC_EXAMPLES

LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"


def coded(oid, code, text, at="@ago:1h"):
    return {"resourceType": "Observation", "id": oid, "status": "final", "code": {"coding": [{"system": LOINC, "code": code}]},
            "effectiveDateTime": when(at), "valueCodeableConcept": {"text": text}}


def condition(cid, system, code):
    return {"resourceType": "Condition", "id": cid, "code": {"coding": [{"system": system, "code": code}]},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]}}


def vitals(rr=16, spo2=97, sbp=120, pulse=70, temp=37.0, acvpu="Alert", o2=None, at="@ago:1h", **older):
    """One set of vital signs; pass None to leave a parameter out, or `<name>_at` for another time.
    Consciousness is ACVPU (RCP NEWS2 2017): a GCS is not ACVPU."""
    out = []
    spec = [("rr", "9279-1", rr, "/min"), ("spo2", "59408-5", spo2, "%"), ("sbp", "8480-6", sbp, "mm[Hg]"),
            ("pulse", "8867-4", pulse, "/min"), ("temp", "8310-5", temp, "Cel"), ("o2", "3151-8", o2, "L/min")]
    for name, code, value, unit in spec:
        if value is not None:
            out.append(obs(name, code, value, unit, at=older.get(f"{name}_at", at)))
    if acvpu is not None:
        out.append(coded("acvpu", "67775-7", acvpu, at=older.get("acvpu_at", at)))
    return out


ADULT = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1960-05-01"}
INPATIENT = {"resourceType": "Encounter", "id": "enc-1", "status": "in-progress",
             "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"}}


def news_body(*observations, conditions=(), goals=None):
    """An adult in an inpatient encounter in progress: the population NEWS2 is for (RCP 2017)."""
    return {"hook": "encounter-start", "hookInstance": "7e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b",
            "context": {"userId": "Practitioner/example", "patientId": "p1", "encounterId": "enc-1"},
            "prefetch": {"vitals": bundle(*observations), "conditions": bundle(*conditions), "goals": goals,
                         "patient": ADULT, "encounter": INPATIENT, "episodes": None}}


def news(client, *observations, **kw):
    cards = post(client, "deterioration-scores", news_body(*observations, **kw))
    assert len(cards) == 1
    card = cards[0]
    return card, predictions(card)["news2"], predictions(card).get("qsofa")


# ---- NEWS2 bands and qSOFA (RCP 2017; Sepsis-3) -------------------------------------------------------

def test_realistic_encounter_start_high_band_and_positive_qsofa(module_client):
    """RR 24 (2) + SpO2 95 (1) + O2 2 L/min (2) + SBP 96 (2) + HR 118 (2) + Alert (0) + 102.2 °F = 39.0 °C (1) = 10."""
    cards = post(module_client, "deterioration-scores", fixture("encounter-start-sepsis.json"))
    (card,) = cards
    p = predictions(card)
    assert p["news2"]["score"] == 10 and p["news2"]["complete"] is True
    assert p["news2"]["contributions"] == {"resp_rate": 2, "spo2": 1, "on_oxygen": 2, "sbp": 2, "pulse": 2, "consciousness": 0, "temperature": 1}
    assert p["qsofa"]["score"] == 2 and p["qsofa"]["positive"] is True
    assert card["indicator"] == "critical" and card["summary"].startswith("NEWS2 10: high clinical risk")
    # qSOFA is not a diagnostic test (Sepsis-3): the card says risk of a poor outcome, and names the pathway.
    assert "risk of a poor outcome" in card["detail"] and "sepsis pathway" in card["detail"] and "Emergency response" in card["detail"]
    assert card["source"]["label"].startswith("Royal College of Physicians")
    assert card["extension"][EXT]["features"]["temperature"]["value"] == pytest.approx(39.0)


@pytest.mark.parametrize("kw, total, band, indicator", [
    (dict(), 0, "low", "info"),
    (dict(rr=21, pulse=95), 3, "low", "info"),                               # 2 + 1
    (dict(rr=21, pulse=95, temp=38.5), 4, "low", "info"),                    # upper edge of low
    (dict(spo2=91), 3, "low-medium", "warning"),                             # a single 3, aggregate < 5
    (dict(rr=21, pulse=95, temp=38.5, spo2=95), 5, "medium", "warning"),     # lower edge of medium
    (dict(rr=21, pulse=115, temp=38.5, spo2=95), 6, "medium", "warning"),
    (dict(rr=21, pulse=115, temp=39.5, spo2=95), 7, "high", "critical"),     # lower edge of high
])
def test_rcp_clinical_risk_bands(module_client, kw, total, band, indicator):
    card, n, _ = news(module_client, *vitals(**kw))
    assert n["score"] == total
    assert card["indicator"] == indicator and f"{band} clinical risk" in card["detail"]


def test_qsofa_positive_raises_a_low_news2_card_to_warning(module_client):
    """SBP 100 (2) + RR 22 (2) = NEWS2 4 (low), but qSOFA 2 (RR ≥ 22, SBP ≤ 100) is positive."""
    card, n, q = news(module_client, *vitals(rr=22, sbp=100))
    assert n["score"] == 4 and q["score"] == 2
    assert card["indicator"] == "warning" and "qSOFA 2" in card["summary"]


def test_old_or_missing_vitals_are_named_not_assumed_normal(module_client):
    """A temperature of 30 h ago is not part of the newest set, and an incomplete set is never "low clinical
    risk": the summary gives a lower bound and says the band is not known (an unmeasured parameter scores
    nothing, so the sum can only grow)."""
    card, n, q = news(module_client, *vitals(temp=36.5, temp_at="@ago:30h", acvpu=None))
    assert set(n["not_assessed"]) == {"temperature", "consciousness"} and n["complete"] is False
    assert card["summary"].startswith("NEWS2 ≥0") and "qSOFA ≥0" in card["summary"]
    assert "low clinical risk" not in card["summary"] and "risk band not known" in card["summary"]
    assert "not assessed" in card["detail"] and "lower bound" in card["detail"]
    assert q["not_assessed"] == ["altered_mentation"]


def test_no_vitals_at_all_says_so(module_client):
    (card,) = post(module_client, "deterioration-scores", news_body(*vitals(at="@ago:3d")))
    assert card["indicator"] == "info" and card["summary"].startswith("NEWS2 and qSOFA not calculated")
    assert "no vital signs recorded in the last 24 hours" in card["summary"] and "nothing is assumed normal" in card["detail"]


def test_unavailable_vitals_prefetch_is_reported(module_client):
    """A prefetch that timed out is "could not be retrieved (timeout)", never "no vital signs recorded":
    data that was not read is not absent."""
    body = news_body()
    body["prefetch"]["vitals"] = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
    (card,) = post(module_client, "deterioration-scores", body)
    assert "not calculated" in card["summary"] and "could not be retrieved (timeout)" in card["summary"]
    assert "not recorded" not in card["summary"] and "not** known to be absent" in card["detail"]
    assert card["extension"][EXT]["unavailable"]["vitals"].startswith("OperationOutcome")


def test_oxygen_not_charted_is_an_assumption_named_on_the_card(module_client):
    card, n, _ = news(module_client, *vitals())
    assert n["contributions"]["on_oxygen"] == 0 and "air assumed" in card["detail"]
    assert card["extension"][EXT]["features"]["on_oxygen"]["imputed"] is True
    card, n, _ = news(module_client, *vitals(o2=3))
    assert n["contributions"]["on_oxygen"] == 2


@pytest.mark.parametrize("conditions, goals, scale, spo2_points", [
    ([], None, 1, 3),                                              # SpO2 89 on Scale 1: 3
    ([condition("hcrf", ICD10, "J96.12")], None, 2, 0),            # chronic hypercapnic failure: 88-92 scores 0
    ([condition("copd", ICD10, "J44.9")], None, 1, 3),             # COPD alone is not a Scale 2 decision
    ([], bundle({"resourceType": "Goal", "id": "g1", "lifecycleStatus": "active", "description": {"text": "SpO2 88-92%"},
                 "target": [{"measure": {"coding": [{"system": LOINC, "code": "59408-5"}]},
                             "detailRange": {"low": {"value": 88, "unit": "%"}, "high": {"value": 92, "unit": "%"}}}]}), 2, 0),
])
def test_spo2_scale2_only_with_a_recorded_hypercapnic_target(module_client, conditions, goals, scale, spo2_points):
    card, n, _ = news(module_client, *vitals(spo2=89), conditions=conditions, goals=goals)
    assert n["spo2_scale"] == scale and n["contributions"]["spo2"] == spo2_points


def test_acvpu_text_and_fahrenheit(module_client):
    card, n, q = news(module_client, *vitals(acvpu="Voice", temp=None), obs("tf", "8310-5", 100.4, "[degF]", at="@ago:1h"))
    assert n["contributions"]["consciousness"] == 3 and q["contributions"]["altered_mentation"] == 1
    assert n["contributions"]["temperature"] == 0  # 100.4 °F = 38.0 °C
    assert card["indicator"] == "warning"  # a single 3


def test_hook_es_library_context_is_accepted(module_client):
    text = (SPEC_EXAMPLES / "hooks-library-1.0.1" / "encounter-start__context-1-example.fragment.txt").read_text()
    context = json.loads("{" + text + "}")["context"]
    enc = dict(INPATIENT, id=context["encounterId"])
    body = {"hook": "encounter-start", "hookInstance": "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a", "context": context,
            # The observations are the example patient's: another patient's data is never used.
            "prefetch": {"vitals": bundle(*[dict(o, subject={"reference": f"Patient/{context['patientId']}"}) for o in vitals()]),
                         "conditions": None, "goals": None, "episodes": None,
                         "patient": dict(ADULT, id=context["patientId"]), "encounter": enc}}
    (card,) = post(module_client, "deterioration-scores", body)
    assert predictions(card)["news2"]["score"] == 0


# ---- care gaps at appointment-book (HOOK-AB-*) ----------------------------------------------------------

def appointment(days_ahead=30, status="proposed"):
    return {"resourceType": "Appointment", "id": "apt1", "status": status, "start": when(f"@ahead:{days_ahead}d"),
            "participant": [{"actor": {"reference": "Patient/p1"}, "status": "tentative"}]}


def gaps_body(conditions, labs, appointments):
    return {"hook": "appointment-book", "hookInstance": "4a5b6c7d-8e9f-4a0b-9c1d-2e3f4a5b6c7d",
            "context": {"userId": "PractitionerRole/A2340113", "patientId": "p1", "appointments": appointments},
            "prefetch": {"conditions": bundle(*conditions), "labs": bundle(*labs)}}


DIABETES = [condition("dm", ICD10, "E11.9")]
HYPERTENSION = [condition("htn", ICD10, "I10")]


def up_to_date(days=20):
    at = f"@ago:{days}d"
    return [obs("a1c", "4548-4", 7.0, "%", at=at), obs("cr", "2160-0", 1.0, "mg/dL", at=at),
            obs("uacr", "9318-7", 12, "mg/g", at=at), obs("ldl", "2089-1", 95, "mg/dL", at=at)]


def test_diabetes_overdue_tests_get_one_info_card_with_orders(module_client):
    labs = [obs("a1c", "4548-4", 7.4, "%", at="@ago:170d"), obs("cr", "2160-0", 1.0, "mg/dL", at="@ago:100d")]
    (card,) = post(module_client, "care-gaps", gaps_body(DIABETES, labs, bundle(appointment(30))))
    assert card["indicator"] == "info" and card["selectionBehavior"] == "any"
    assert "3 monitoring tests due" in card["summary"] and "HbA1c" in card["summary"]
    codes = {a["resource"]["code"]["coding"][0]["code"] for a in actions(card)}
    assert codes == {"4548-4", "9318-7", "24331-1"}  # HbA1c (170 + 30 > 183 days), UACR and lipids never done
    from fhir.resources.R4B import get_fhir_model_class

    for a in actions(card):
        r = a["resource"]
        get_fhir_model_class("ServiceRequest").model_validate(r)  # ACT-1: a valid R4 resource to create
        assert a["type"] == "create" and r["resourceType"] == "ServiceRequest" and r["status"] == "draft"
        assert r["code"]["coding"][0]["system"] == "http://loinc.org" and r["subject"] == {"reference": "Patient/p1"}
    assert "| not recorded |" in card["detail"] and "Appointment/" not in card["detail"]  # the date, not the id


def test_due_is_judged_at_the_visit_date(module_client):
    """HbA1c 6.8 % (at goal) 170 days old: due for a visit in 30 days (200 > 183), not for one in 5 days (175)."""
    labs = up_to_date()
    labs[0] = obs("a1c", "4548-4", 6.8, "%", at="@ago:170d")
    assert post(module_client, "care-gaps", gaps_body(DIABETES, labs, bundle(appointment(5)))) == []
    (card,) = post(module_client, "care-gaps", gaps_body(DIABETES, labs, bundle(appointment(30))))
    assert [a["resource"]["code"]["coding"][0]["code"] for a in actions(card)] == ["4548-4"]


def test_hook_ab4_bare_array_and_bundle_give_the_same_card(module_client):
    as_bundle = post(module_client, "care-gaps", gaps_body(DIABETES, [], bundle(appointment(10))))
    as_array = post(module_client, "care-gaps", gaps_body(DIABETES, [], [appointment(10)]))
    assert as_bundle == as_array and len(as_bundle) == 1


def test_hook_ab_library_example_with_bare_array(module_client):
    text = (SPEC_EXAMPLES / "hooks-library-1.0.1" / "appointment-book__context-1-stu3.fragment.txt").read_text()
    context = json.loads("{" + text + "}")["context"]
    body = {"hook": "appointment-book", "hookInstance": "6b7c8d9e-0f1a-4b2c-8d3e-4f5a6b7c8d9e", "context": context,
            "prefetch": {"conditions": bundle(*HYPERTENSION), "labs": bundle()}}
    (card,) = post(module_client, "care-gaps", body)
    # past appointment start (2019): judged at booking time. Hypertension alone: the 2025 AHA/ACC guideline's
    # tests at diagnosis (3.1.2, Table 6), none on record: metabolic panel, lipid profile and urine albumin/creatinine.
    assert {a["resource"]["code"]["coding"][0]["code"] for a in actions(card)} == {"51990-0", "24331-1", "9318-7"}


def test_hypertension_only_uses_its_own_intervals(module_client):
    """Hypertension alone has the 2025 AHA/ACC guideline's tests at diagnosis (3.1.2, Table 6), with no
    repeat interval (the yearly creatinine and 5-yearly lipids were our own choice and are gone): a 400-day-old
    creatinine and lipid profile are not due; the urine albumin/creatinine ratio, never done, is."""
    labs = [obs("cr", "2160-0", 1.0, "mg/dL", at="@ago:400d"), obs("ldl", "2089-1", 95, "mg/dL", at="@ago:400d")]
    (card,) = post(module_client, "care-gaps", gaps_body(HYPERTENSION, labs, bundle(appointment(10))))
    assert [a["resource"]["code"]["coding"][0]["code"] for a in actions(card)] == ["9318-7"]


def test_no_card_without_the_conditions_or_when_up_to_date(module_client):
    assert post(module_client, "care-gaps", gaps_body([], [], bundle(appointment()))) == []
    assert post(module_client, "care-gaps", gaps_body(DIABETES + HYPERTENSION, up_to_date(), bundle(appointment()))) == []


def test_bedside_and_care_gap_services_are_discoverable(module_client):
    services = {(s["id"], s["hook"]) for s in module_client.get("/cds-services").get_json()["services"]}
    assert {("deterioration-scores", "encounter-start"), ("care-gaps", "appointment-book")} <= services
