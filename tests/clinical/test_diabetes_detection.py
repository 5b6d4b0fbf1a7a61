"""diabetes-detection scenarios, each a plain FHIR R4 patient-view request through the HTTP API.

Sources (cited per test): ADA Standards of Care in Diabetes—2026, section 2 "Diagnosis and Classification
of Diabetes" (Diabetes Care 2026;49(Suppl. 1):S27-S49) — diagnostic criteria, confirmation rule,
prediabetes ranges, screening criteria for asymptomatic adults; section 3 — lifestyle programme for
prediabetes; USPSTF 2021 (JAMA 2021;326:736-743) — screening adults 35-70 with overweight or obesity.
Dates are relative to today so the 3-year and 1-year intervals are tested on both sides.
"""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from cds_testing.fhir_factory import (
    ICD10,
    SNOMED,
    bundle,
    coded_obs,
    condition,
    hook_request,
    patient,
    quantity_obs,
)
from cds_testing.spec_rules import assert_no_empty_members, assert_valid_card

SID = "diabetes-detection"
EXT = "org.cdsml.prediction"


@pytest.fixture
def dd_client(make_app):
    """The test client of an app serving only diabetes-detection, so no other service's card can mask a failure."""
    return make_app(services=[SID]).test_client()


def ago(days: int) -> str:
    return (date.today() - timedelta(days=days)).isoformat()


def born(age: int) -> str:
    """A birth date that makes the patient exactly `age` today (birthday 100 days ago)."""
    d = date.today() - timedelta(days=100)
    return d.replace(year=d.year - age).isoformat()


def a1c(value, days=30, oid=None):
    return quantity_obs(oid or f"a1c-{days}-{value}", "4548-4", value, "%", date=ago(days))


def fpg(value, days=30, unit="mg/dL", oid=None):
    return quantity_obs(oid or f"fpg-{days}-{value}", "1558-6" if unit == "mg/dL" else "14771-0", value, unit, date=ago(days))


def ogtt(value, days=30):
    return quantity_obs(f"ogtt-{days}-{value}", "1518-0", value, "mg/dL", date=ago(days))


def bmi(value, days=60):
    return quantity_obs(f"bmi-{value}", "39156-5", value, "kg/m2", date=ago(days))


def request(*, age=50, gender="female", race=None, labs=(), vitals=(), conditions=(), drop=()):
    body = {"patient": patient("p1", gender, born(age), race), "conditions": bundle(*conditions),
            "labs": bundle(*labs), "vitals": bundle(*vitals)}
    for key in drop:
        body.pop(key)
    return hook_request(prefetch=body)


def fire(client, body) -> list[dict]:
    resp = client.post(f"/cds-services/{SID}", json=body)
    assert resp.status_code == 200, resp.data
    out = resp.get_json()
    assert_no_empty_members(out)
    for c in out["cards"]:
        assert_valid_card(c)
    return out["cards"]


def one(client, body) -> dict:
    cards = fire(client, body)
    assert len(cards) == 1, cards
    return cards[0]


def orders(card) -> list[str]:
    """LOINC/SNOMED codes of the draft orders a card offers."""
    out = []
    for s in card.get("suggestions", []):
        for a in s["actions"]:
            res = a["resource"]
            out.append(res["code"]["coding"][0]["code"])
    return out


# ---- diagnostic thresholds -------------------------------------------------------------------


@pytest.mark.parametrize("value,expected", [(6.4, "prediabetes"), (6.5, "diabetes")])
def test_hba1c_diagnostic_threshold_6_5(dd_client, value, expected):
    """ADA 2026 §2 criteria for the diagnosis of diabetes: HbA1c ≥ 6.5% is in the diabetes range; 6.4% is prediabetes."""
    card = one(dd_client, request(labs=[a1c(value)]))
    if expected == "diabetes":
        assert card["indicator"] == "warning" and card["summary"].startswith("Possible undiagnosed diabetes: HbA1c 6.5%")
        assert orders(card) == ["4548-4"]  # one-click repeat of the same test to confirm
    else:
        assert card["indicator"] == "info" and card["summary"].startswith("Prediabetes range: HbA1c 6.4%")
    assert "%" not in card["summary"].split("(ADA")[0].replace(f"{value}%", "")  # no risk percentage, only the result


@pytest.mark.parametrize("value,expected", [(125, "prediabetes"), (126, "diabetes")])
def test_fasting_glucose_diagnostic_threshold_126(dd_client, value, expected):
    """ADA 2026 §2: fasting plasma glucose ≥ 126 mg/dL (7.0 mmol/L) is in the diabetes range; 100-125 is prediabetes."""
    card = one(dd_client, request(labs=[fpg(value)]))
    if expected == "diabetes":
        assert card["indicator"] == "warning" and "fasting glucose 126 mg/dL" in card["summary"]
        assert orders(card) == ["1558-6"]
    else:
        assert card["indicator"] == "info" and "fasting glucose 125 mg/dL" in card["summary"]


@pytest.mark.parametrize("result,shown,category", [
    (lambda: a1c(6.46), "HbA1c 6.46%", "Prediabetes range"),          # judged below 6.5: never shown as 6.5
    (lambda: a1c(5.66), "HbA1c 5.66%", "Diabetes screening up to date"),  # below 5.7: normal
    (lambda: fpg(125.6), "fasting glucose 125.6 mg/dL", "Prediabetes range"),
    (lambda: fpg(126.4), "fasting glucose 126 mg/dL", "Possible undiagnosed diabetes"),  # whole mg/dL otherwise
], ids=["a1c-6.46", "a1c-5.66", "fpg-125.6", "fpg-126.4"])
def test_a_value_is_never_rounded_across_the_threshold_it_was_judged_by(dd_client, result, shown, category):
    """ADA 2026 §2 thresholds are compared with the unrounded value; the card shows the value on the side it was
    judged (HbA1c 6.46 % on a prediabetes card, not "6.5 %" beside "diabetes ≥ 6.5"), the table's decimals otherwise."""
    card = one(dd_client, request(labs=[result()]))
    assert card["summary"].startswith(category) and shown in card["summary"], card["summary"]


def test_fasting_glucose_in_mmol_per_l_is_converted(dd_client):
    """ADA 2026 §2: 7.0 mmol/L is the 126 mg/dL threshold (glucose 180.16 g/mol)."""
    card = one(dd_client, request(labs=[fpg(7.0, unit="mmol/L")]))
    assert card["indicator"] == "warning" and "fasting glucose 126 mg/dL" in card["summary"]


@pytest.mark.parametrize("value,expected", [(199, "prediabetes"), (200, "diabetes")])
def test_ogtt_2h_threshold_200(dd_client, value, expected):
    """ADA 2026 §2: 2-h plasma glucose ≥ 200 mg/dL in a 75 g OGTT is diabetes; 140-199 is prediabetes. A value
    already diagnostic never gets a model probability (the old diabetes-risk gave 99.4% for 250)."""
    card = one(dd_client, request(labs=[ogtt(value)]))
    ext = card["extension"][EXT]
    assert "score" not in ext and "model" not in ext
    if expected == "diabetes":
        assert card["indicator"] == "warning" and "2-hour OGTT glucose 200 mg/dL" in card["summary"]
    else:
        assert card["indicator"] == "info" and card["summary"].startswith("Prediabetes range: 2-hour OGTT glucose 199 mg/dL")


def test_ogtt_250_is_diabetes_range_not_a_risk(dd_client):
    """ADA 2026 §2: OGTT 250 mg/dL is already diagnostic: a diabetes-range card, no percentage."""
    card = one(dd_client, request(labs=[ogtt(250)]))
    assert card["indicator"] == "warning" and "Possible undiagnosed diabetes" in card["summary"]
    assert "99" not in card["summary"] and "risk" not in card["summary"].lower()


def test_confirmation_rule_two_abnormal_results_confirm(dd_client):
    """ADA 2026 §2: without unequivocal hyperglycaemia, two abnormal results (same sample or two samples)
    confirm the diagnosis: no repeat test is asked for once two are on file."""
    card = one(dd_client, request(labs=[a1c(6.9, days=20), fpg(131, days=20)]))
    assert card["indicator"] == "warning"
    assert card["summary"].startswith("Possible undiagnosed diabetes: 2 results in the diabetes range")
    assert orders(card) == [] and "Confirmed by the ADA rule" in card["detail"]


def test_confirmation_rule_two_hba1c_in_two_samples(dd_client):
    """ADA 2026 §2: the same test repeated on a second sample, both ≥ 6.5%, confirms."""
    card = one(dd_client, request(labs=[a1c(6.7, days=200, oid="a1"), a1c(6.8, days=20, oid="a2")]))
    assert "2 results in the diabetes range" in card["summary"] and orders(card) == []


def test_discordant_results_repeat_the_abnormal_test(dd_client):
    """ADA 2026 §2: when two different tests disagree, repeat the test above its diagnostic cut point."""
    card = one(dd_client, request(labs=[a1c(6.6, days=10), fpg(95, days=10)]))
    assert card["indicator"] == "warning" and "Confirm with a repeat test" in card["summary"]
    assert orders(card) == ["4548-4"]


def test_existing_diabetes_diagnosis_gives_no_card(dd_client):
    """ADA 2026 §2 applies to people without diabetes; diagnosed diabetes is followed by care-gaps (section 6)."""
    assert fire(dd_client, request(labs=[a1c(8.1)], conditions=[condition("dm", ICD10, "E11.9")])) == []
    assert fire(dd_client, request(labs=[a1c(8.1)], conditions=[condition("dm", SNOMED, "44054006", status="resolved")])) == []


def test_hba1c_unreliable_uses_plasma_glucose_only(dd_client):
    """ADA 2026 §2: with altered red-cell turnover (e.g. sickle cell disease, dialysis) use plasma glucose criteria
    only: an HbA1c of 7.0% is not read as diagnostic, and the suggested test is a fasting glucose."""
    body = request(age=50, labs=[a1c(7.0, days=20)], conditions=[condition("scd", ICD10, "D57.1")])
    card = one(dd_client, body)
    assert card["indicator"] == "info" and card["summary"].startswith("Diabetes screening due")
    assert orders(card) == ["1558-6"] and "HbA1c is **not used**" in card["detail"]


# ---- prediabetes -----------------------------------------------------------------------------


@pytest.mark.parametrize("value,expected", [(5.6, "normal"), (5.7, "prediabetes")])
def test_prediabetes_lower_bound_5_7(dd_client, value, expected):
    """ADA 2026 §2 criteria for prediabetes: HbA1c 5.7-6.4%; 5.6% is normal."""
    card = one(dd_client, request(labs=[a1c(value, days=40)]))
    assert card["indicator"] == "info"
    if expected == "prediabetes":
        assert card["summary"].startswith("Prediabetes range: HbA1c 5.7%") and "Retest by" in card["summary"]
    else:
        assert card["summary"].startswith("Diabetes screening up to date: HbA1c 5.6%")
        assert orders(card) == []


def test_prediabetes_recent_test_refers_to_lifestyle_programme_without_retest(dd_client):
    """ADA 2026 §2 (prediabetes: test at least yearly) and §3 (refer to a DPP-style lifestyle programme): a test
    40 days old is recent, so no test is ordered; the referral is offered and the retest date is given."""
    card = one(dd_client, request(labs=[fpg(110, days=40)]))
    due = (date.today() - timedelta(days=40) + timedelta(days=365)).isoformat()
    assert f"Retest by {due}" in card["summary"]
    assert orders(card) == ["3457005"]  # the referral only: never a test that is already recent
    assert "Diabetes Prevention Program" in card["suggestions"][0]["actions"][0]["resource"]["note"][0]["text"]


@pytest.mark.parametrize("days,retest", [(364, False), (366, True)])
def test_prediabetes_yearly_retest_interval(dd_client, days, retest):
    """ADA 2026 §2: people with prediabetes are tested yearly: a test 364 days old is recent; 366 days is due."""
    card = one(dd_client, request(labs=[a1c(6.0, days=days)]))
    assert ("4548-4" in orders(card)) is retest
    assert ("Yearly retest is due" in card["summary"]) is retest


# ---- screening eligibility -------------------------------------------------------------------


@pytest.mark.parametrize("age,card_expected", [(34, False), (35, True)])
def test_screening_age_34_35_without_risk_factors(dd_client, age, card_expected):
    """ADA 2026 §2: testing for all people from age 35 (USPSTF 2021 also starts at 35 with overweight); a
    34-year-old with a normal BMI and no risk factor is not eligible."""
    cards = fire(dd_client, request(age=age, vitals=[bmi(22)]))
    if card_expected:
        (card,) = cards
        assert card["summary"].startswith("Diabetes screening due") and orders(card) == ["4548-4"]
    else:
        assert cards == []


@pytest.mark.parametrize("age,uspstf", [(70, True), (71, False)])
def test_uspstf_age_70_71(dd_client, age, uspstf):
    """USPSTF 2021: adults aged 35-70 with overweight or obesity; at 71 only the ADA criterion (all adults from 35)
    applies, and the card says so."""
    card = one(dd_client, request(age=age, vitals=[bmi(31)]))
    assert card["summary"].startswith("Diabetes screening due")
    assert ("USPSTF 2021: aged 35-70 with overweight or obesity" in card["detail"]) is uspstf
    assert "testing for all adults from age 35" in card["detail"]


@pytest.mark.parametrize("value,eligible", [(24.9, False), (25, True)])
def test_ada_bmi_25_with_a_risk_factor_under_35(dd_client, value, eligible):
    """ADA 2026 §2: under 35, test adults with BMI ≥ 25 and one or more risk factors (here hypertension)."""
    cards = fire(dd_client, request(age=30, vitals=[bmi(value)], conditions=[condition("htn", ICD10, "I10")]))
    if eligible:
        (card,) = cards
        assert "BMI 25 ≥ 25 with hypertension" in card["detail"] and orders(card) == ["4548-4"]
    else:
        assert cards == []


@pytest.mark.parametrize("value,eligible", [(22.9, False), (23, True)])
def test_ada_bmi_23_for_asian_american_people(dd_client, value, eligible):
    """ADA 2026 §2: BMI ≥ 23 kg/m² in Asian American people (race is itself a listed risk factor)."""
    cards = fire(dd_client, request(age=28, race="2028-9", vitals=[bmi(value)]))
    if eligible:
        (card,) = cards
        assert "BMI 23 ≥ 23 (Asian American threshold)" in card["detail"]
    else:
        assert cards == []


def test_overweight_without_risk_factor_under_35_is_not_screened(dd_client):
    """ADA 2026 §2: under 35, overweight alone (no risk factor) is not a testing criterion."""
    assert fire(dd_client, request(age=30, vitals=[bmi(29)])) == []


@pytest.mark.parametrize("age,card_expected", [(17, False), (18, True)])
def test_adults_only(dd_client, age, card_expected):
    """ADA 2026 §2 / §14: youth have their own screening criteria; no card under 18, the adult rules from 18 (an
    HbA1c of 6.8 % is in the diabetes range)."""
    cards = fire(dd_client, request(age=age, labs=[a1c(6.8)], vitals=[bmi(30)]))
    assert bool(cards) == card_expected
    if card_expected:
        assert cards[0]["summary"].startswith("Possible undiagnosed diabetes")


# ---- recent test inside / outside the 3-year interval ------------------------------------------


@pytest.mark.parametrize("days,card_kind", [(1000, "up-to-date"), (1100, "due")])
def test_normal_result_inside_and_outside_3_year_interval(dd_client, days, card_kind):
    """ADA 2026 §2 and USPSTF 2021: with normal results, repeat at least every 3 years: a normal HbA1c 1000 days
    ago is recent (no order); one 1100 days ago is outside the interval (screening due, HbA1c suggested)."""
    card = one(dd_client, request(age=50, labs=[a1c(5.3, days=days)]))
    if card_kind == "up-to-date":
        assert card["summary"].startswith("Diabetes screening up to date: HbA1c 5.3%")
        due = (date.today() - timedelta(days=days) + timedelta(days=1095)).isoformat()
        assert f"Next test by {due}" in card["summary"] and orders(card) == []
    else:
        assert card["summary"].startswith("Diabetes screening due") and orders(card) == ["4548-4"]


def test_a_recent_normal_hba1c_is_read_and_no_test_is_asked(dd_client):
    """ADA 2026 §2: a woman with HbA1c 5.2% today is not told to order one."""
    card = one(dd_client, request(age=55, labs=[a1c(5.2, days=0)], vitals=[bmi(33)]))
    assert card["indicator"] == "info" and orders(card) == [] and "HbA1c 5.2%" in card["summary"]


# ---- pregnancy -------------------------------------------------------------------------------


def test_pregnancy_condition_no_detection_card_and_says_why(dd_client):
    """ADA 2026 §2 and §15: gestational criteria differ; a diagnostic-looking HbA1c is not interpreted in pregnancy."""
    card = one(dd_client, request(age=30, labs=[a1c(6.6)], conditions=[condition("preg", ICD10, "Z34.00", onset=ago(90))]))
    assert card["indicator"] == "info" and "not applied in pregnancy" in card["summary"]
    assert orders(card) == [] and "sections 2 and 15" in card["detail"]


def test_pregnancy_status_observation(dd_client):
    """ADA 2026 §15: a positive pregnancy status (LOINC 82810-3 = SNOMED 77386006) counts as pregnancy."""
    card = one(dd_client, request(age=32, labs=[a1c(5.9)], vitals=[coded_obs("ps", "82810-3", "77386006", date=ago(30))]))
    assert "not applied in pregnancy" in card["summary"]


def test_gestational_diabetes_history_is_screened_every_3_years(dd_client):
    """ADA 2026 §2: people with a history of gestational diabetes need lifelong testing at least every 3 years,
    whatever their age or BMI."""
    card = one(dd_client, request(age=29, vitals=[bmi(21)], conditions=[condition("gdm", ICD10, "Z86.32", status="resolved")]))
    assert "history of gestational diabetes" in card["detail"] and orders(card) == ["4548-4"]


# ---- data unavailable vs not recorded ----------------------------------------------------------


def test_labs_not_available_is_not_no_result(dd_client, make_app):
    """Rules of the service: results that could not be obtained are 'not available', never
    'not recorded'; no test is suggested because one may already be recent."""
    body = request(age=50, drop=("labs",))  # absent key and no FHIR server: unobtainable, policy omit
    card = one(dd_client, body)
    assert card["summary"] == "Diabetes screening status unknown: laboratory results were not available to the service"
    assert orders(card) == [] and "not recorded" not in card["detail"]
    assert "labs" in card["extension"][EXT]["unavailable"]


def test_labs_available_and_empty_is_not_recorded(dd_client):
    """The labs came back empty: 'not recorded in the last 3 years' (the shared wording, `missing_text`), screening due
    at 50 (ADA 2026 §2)."""
    card = one(dd_client, request(age=50, labs=[]))
    assert card["summary"].startswith("Diabetes screening due: HbA1c and fasting glucose not recorded in the last 3 years")
    assert "not available" not in card["summary"]


def test_missing_problem_list_is_a_412(dd_client):
    """Without the problem list the service cannot know 'no diabetes diagnosis' or pregnancy: 412 with an
    OperationOutcome (PREFETCH-5), never a card."""
    resp = dd_client.post(f"/cds-services/{SID}", json=request(drop=("conditions",)))
    assert resp.status_code == 412
    assert resp.get_json()["resourceType"] == "OperationOutcome"


def test_card_cites_guideline_edition_and_section(dd_client):
    """Rules of the house: the guideline edition and section are on the card."""
    card = one(dd_client, request(labs=[a1c(6.7)]))
    assert "ADA Standards of Care in Diabetes—2026, section 2" in card["detail"]
    assert card["source"]["label"].startswith("ADA Standards of Care in Diabetes—2026, section 2")


def test_screening_card_shows_the_ada_risk_test_as_a_lower_bound(dd_client):
    """ADA 2026 §2 (a risk test may guide testing) with Bang 2009's points: a 52-year-old man (2 + 1) with
    BMI 31 (2) and hypertension (1) scores at least 6; physical activity is not read, so the total is '≥'."""
    card = one(dd_client, request(age=52, gender="male", vitals=[bmi(31)], conditions=[condition("htn", ICD10, "I10")]))
    assert "ADA Diabetes Risk Test (Bang 2009): **≥ 6 of 10**" in card["detail"]
    assert "physically inactive" in card["detail"]
    (p,) = card["extension"][EXT]["predictions"]
    assert p["model"] == "ada-risk-test" and p["score"] == 6 and p["complete"] is False


@pytest.mark.parametrize("gender,noted", [("female", True), ("male", False)])
def test_pregnancy_status_not_obtained_is_said_for_a_woman(dd_client, gender, noted):
    """Unavailable is not absent: with the pregnancy status (the `vitals` key) not obtained, a woman's card says
    pregnancy was not checked (ADA 2026 sections 2 and 15: the adult rules do not apply in pregnancy); a man's
    card does not (`only_if = "female"`). The old service took the missing status as "not pregnant" silently."""
    card = one(dd_client, request(age=50, gender=gender, labs=[a1c(5.3, days=100)], drop=("vitals",)))
    assert ("**Not checked:** not pregnant — pregnancy not available to the service" in card["detail"]) == noted


@pytest.mark.parametrize("result,expected", [
    (lambda: fpg(99), "normal"), (lambda: fpg(100), "prediabetes"),
    (lambda: ogtt(139), "normal"), (lambda: ogtt(140), "prediabetes"),
], ids=["fpg-99", "fpg-100", "ogtt-139", "ogtt-140"])
def test_prediabetes_lower_bounds_of_fasting_and_2_hour_glucose(dd_client, result, expected):
    """ADA 2026 §2 criteria for prediabetes: fasting plasma glucose 100-125 mg/dL (impaired fasting glucose),
    2-hour glucose 140-199 mg/dL in a 75 g OGTT (impaired glucose tolerance); 99 and 139 are normal."""
    card = one(dd_client, request(labs=[result()]))
    assert card["summary"].startswith("Prediabetes range" if expected == "prediabetes" else "Diabetes screening up to date")
