"""The ascvd-10y-risk service end to end: cards, population guard, missing inputs, traceability.
Checks RESP-1, CARD-1..5, SRC-1, SUGG-1, ACT-1, OVR-1, LINK-1 and the prediction extension."""
import math

import pytest

from cds_testing.fhir_factory import ICD10, SNOMED, ascvd_prefetch, condition, hook_request, med_request
from cds_testing.spec_rules import assert_no_empty_members, assert_valid_card
from models.equations.pce import PooledCohortEquations

URL = "/cds-services/ascvd-10y-risk"
EXT = "org.cdsml.prediction"


def fire(client, **kw):
    resp = client.post(URL, json=hook_request(prefetch=ascvd_prefetch(**kw)))
    assert resp.status_code == 200, resp.data
    body = resp.get_json()
    assert_no_empty_members(body)  # GEN-2
    for card in body["cards"]:
        assert_valid_card(card)
    return body["cards"]


def test_resp1_low_risk_card_matches_the_equation(client):
    cards = fire(client, birth_date="1970-03-01", tc=213, hdl=50, sbp=120)
    assert len(cards) == 1
    card = cards[0]
    ext = card["extension"][EXT]
    age = ext["features"]["age"]["value"]
    expected = PooledCohortEquations().predict_values([age, 1, 0, 213, 50, 120, 0, 0, 0])
    assert math.isclose(ext["score"], expected, abs_tol=1e-6)
    assert ext["model"] == "pce-goff-2013" and ext["version"] == "2013.1"
    assert card["indicator"] == "info" and f"{100 * expected:.1f}%" in card["summary"]
    assert "suggestions" not in card  # low risk: nothing to order
    # Each input with value, unit and date in the detail (traceability).
    assert "| Total cholesterol | 213 mg/dL | 2026-06-01 |" in card["detail"]
    assert math.isclose(ext["baseline"] + sum(ext["contributions"].values()), ext["linearPredictor"], abs_tol=1e-4)


def test_card_high_risk_is_warning_with_statin_suggestion(client):
    cards = fire(client, gender="male", birth_date="1955-01-01", tc=260, hdl=35, sbp=165, smoker=True, ldl=170)
    card = cards[0]
    assert card["indicator"] == "warning" and card["summary"].startswith("High 10-year ASCVD risk")
    assert card["extension"][EXT]["score"] >= 0.20
    (suggestion,) = card["suggestions"]
    assert card["selectionBehavior"] == "any"
    action = suggestion["actions"][0]
    assert action["type"] == "create" and action["resource"]["resourceType"] == "MedicationRequest"
    rx = "http://www.nlm.nih.gov/research/umls/rxnorm"
    product, ingredient = action["resource"]["medicationCodeableConcept"]["coding"]
    # Orderable in one click: the clinical drug (SCD) first, its ingredient beside it, and a structured dose.
    assert product == {"system": rx, "code": "617311", "display": "atorvastatin 40 MG Oral Tablet"}
    assert ingredient == {"system": rx, "code": "83367", "display": "atorvastatin"}
    (dosage,) = action["resource"]["dosageInstruction"]
    assert dosage["timing"] == {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}
    assert dosage["route"]["coding"] == [{"system": "http://snomed.info/sct", "code": "26643006", "display": "Oral route"}]
    assert dosage["doseAndRate"] == [{"doseQuantity": {"value": 40.0, "unit": "mg", "system": "http://unitsofmeasure.org",
                                                       "code": "mg"}}]
    from fhir.resources.R4B import get_fhir_model_class
    get_fhir_model_class("MedicationRequest").model_validate(action["resource"])  # a valid R4 resource to create
    assert action["resource"]["subject"] == {"reference": "Patient/p1"}
    # The factors raising risk most are named with their values.
    assert "Factors raising this risk most" in card["detail"]
    assert "- Systolic blood pressure: 165 mm Hg (2026-06-01), +" in card["detail"]
    assert "| Current smoker | yes | 2026-06-01 |" in card["detail"]


def test_intermediate_risk_suggests_moderate_statin_unless_on_statin(client):
    kw = dict(gender="male", birth_date="1965-01-01", tc=230, hdl=42, sbp=138)
    card = fire(client, **kw)[0]
    assert card["summary"].startswith("Intermediate") and card["indicator"] == "warning"
    assert "20 mg" in card["suggestions"][0]["label"]
    on_statin = fire(client, **kw, meds=[med_request("st", "617310", "atorvastatin 20 MG Oral Tablet")])[0]
    assert "suggestions" not in on_statin


def test_treated_hypertension_from_scd_code_by_ingredient_name(client):
    card = fire(client, meds=[med_request("m1", "314076", "lisinopril 10 MG Oral Tablet")])[0]
    feat = card["extension"][EXT]["features"]["bp_treated"]
    assert feat["value"] == 1.0 and feat["evidence"] == ["MedicationRequest/m1"]


def test_diabetes_from_icd10_prefix(client):
    card = fire(client, conditions=[condition("c1", ICD10, "E11.9")])[0]
    assert card["extension"][EXT]["features"]["diabetes"]["value"] == 1.0


def test_black_race_uses_african_american_equations(client):
    card = fire(client, race="2054-5")[0]
    assert card["extension"][EXT]["equation"] == "black_female"
    assert "imputed" not in card["extension"][EXT]["features"]["black"]


def test_cholesterol_in_mmol_per_l_is_converted(client):
    mg = fire(client, tc=213, hdl=50)[0]["extension"][EXT]
    mmol = fire(client, tc=213 * 0.02586, hdl=50 * 0.02586, tc_unit="mmol/L")[0]["extension"][EXT]
    assert math.isclose(mmol["features"]["total_cholesterol"]["value"], 213, rel_tol=1e-6)
    assert math.isclose(mg["score"], mmol["score"], rel_tol=1e-6)


@pytest.mark.parametrize("kw", [
    dict(birth_date="1990-01-01"),                               # age 36: below 40 (and LDL-C < 190)
    dict(birth_date="1940-01-01"),                               # age 86: above 79
])
def test_population_guard_gives_no_card(client, kw):
    assert fire(client, **kw) == []


@pytest.mark.parametrize("kw", [
    dict(conditions=[condition("mi", SNOMED, "22298006", status="resolved")]),  # known ASCVD, even resolved
    dict(conditions=[condition("st", ICD10, "I63.9")]),
])
def test_known_ascvd_gets_no_risk_estimate(client, kw):
    """Clinical ASCVD gets an info card saying the PCE does not apply (secondary prevention, 2018 AHA/ACC 4.1), with no score and no statin draft."""
    (card,) = fire(client, **kw)
    assert card["indicator"] == "info" and "secondary prevention" in card["summary"]
    assert "score" not in card["extension"][EXT] and "suggestions" not in card


@pytest.mark.parametrize("missing,label,order", [
    ("hdl", "HDL cholesterol", "24331-1"),
    ("sbp", "Systolic blood pressure", None),
])
def test_missing_input_gives_info_card_naming_it(client, missing, label, order):
    card = fire(client, **{missing: None})[0]
    assert card["indicator"] == "info" and label in card["summary"] and "not calculated" in card["summary"]
    assert "score" not in card["extension"][EXT]  # no invented risk
    if order:
        action = card["suggestions"][0]["actions"][0]
        assert action["resource"]["resourceType"] == "ServiceRequest"
        assert action["resource"]["code"]["coding"][0] == {"system": "http://loinc.org", "code": order,
                                                           "display": "Lipid panel - Serum or Plasma"}
    else:
        assert "suggestions" not in card


def test_stale_values_are_missing_not_used(client):
    body = hook_request(prefetch=ascvd_prefetch())
    for entry in body["prefetch"]["lipids"]["entry"]:
        entry["resource"]["effectiveDateTime"] = "2015-01-01"
    card = client.post(URL, json=body).get_json()["cards"][0]
    assert "not calculated" in card["summary"]
    assert "older than 1825 days" in card["detail"]


def test_implausible_value_is_rejected_with_reason(client):
    card = fire(client, tc=2130)[0]
    assert "not calculated" in card["summary"]
    assert "outside the plausible range" in card["extension"][EXT]["features"]["total_cholesterol"]["note"]


def test_entered_in_error_observation_is_ignored(client):
    body = hook_request(prefetch=ascvd_prefetch())
    body["prefetch"]["lipids"]["entry"][0]["resource"]["status"] = "entered-in-error"
    card = client.post(URL, json=body).get_json()["cards"][0]
    assert "Total cholesterol" in card["summary"]


def test_readme_example_request_produces_a_card(client, load_fixture):
    """The request the README's curl example sends."""
    body = load_fixture("requests/ascvd-patient-view.json")
    (card,) = client.post(URL, json=body).get_json()["cards"]
    assert_valid_card(card)
    assert card["extension"][EXT]["features"]["bp_treated"]["value"] == 1.0
