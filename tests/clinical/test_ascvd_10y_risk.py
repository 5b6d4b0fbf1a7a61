"""ascvd-10y-risk scenarios from the 2018 AHA/ACC/multisociety Guideline on the Management of Blood Cholesterol
(Grundy SM et al., Circulation 2019;139:e1082-e1143): its decision flow in order, both sides of every threshold.
Each scenario is a plain FHIR R4 patient-view request through the HTTP API."""
from __future__ import annotations

import math
from datetime import date, timedelta

import pytest

from cds_testing.fhir_factory import (
    ICD10,
    SNOMED,
    ascvd_prefetch,
    bundle,
    condition,
    hook_request,
    med_request,
    quantity_obs,
)
from models.equations.pce import PooledCohortEquations

URL = "/cds-services/ascvd-10y-risk"
EXT = "org.cdsml.prediction"
T2DM = condition("dm", ICD10, "E11.9")


def born(age: int) -> str:
    """A birth date that makes the patient exactly `age` today (1 January)."""
    return f"{date.today().year - age}-01-01"


def fire(client, extra: dict | None = None, **kw) -> list[dict]:
    prefetch = ascvd_prefetch(**kw)
    prefetch.update(extra or {})
    resp = client.post(URL, json=hook_request(prefetch=prefetch))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()["cards"]


def only(client, extra: dict | None = None, **kw) -> dict:
    (card,) = fire(client, extra, **kw)
    return card


def drafts(card: dict) -> list[dict]:
    """The resources the card's suggestions would create."""
    return [a["resource"] for s in card.get("suggestions", []) for a in s["actions"] if a["type"] == "create"]


def statin_drafts(card: dict) -> list[str]:
    return [r["dosageInstruction"][0]["text"] for r in drafts(card) if r["resourceType"] == "MedicationRequest"]


def tc_for_risk(target: float, *, age: int, female=0, hdl=50, sbp=130, treated=0, smoker=0, diabetes=0) -> float:
    """Solve the Pooled Cohort Equations for the total cholesterol giving `target` risk (risk rises with TC here)."""
    pce = PooledCohortEquations()
    lo, hi = 60.0, 590.0  # inside the plausible range of total cholesterol (50-600 mg/dL)
    for _ in range(80):
        mid = (lo + hi) / 2
        if pce.predict_values([age, female, 0, mid, hdl, sbp, treated, smoker, diabetes]) < target:
            lo = mid
        else:
            hi = mid
    return hi


# ---- finding 5: diabetes 40-75 is a statin benefit group whatever the 10-year risk (4.3) ------------------

def test_45_year_old_with_type_2_diabetes_gets_a_statin_group_card_not_low_risk(client):
    """4.3 recommendation 1 (COR I): adults 40-75 with diabetes, moderate-intensity statin regardless of the
    10-year risk. The old card said "Low 10-year ASCVD risk 1.2% ... lifestyle"."""
    card = only(client, birth_date=born(45), conditions=[T2DM], tc=180, hdl=55, ldl=100)
    assert card["indicator"] == "warning" and card["summary"].startswith("Diabetes, age 45")
    assert "Low" not in card["summary"] and "moderate-intensity statin" in card["summary"]
    assert card["extension"][EXT]["score"] < 0.05  # the PCE is still shown, as a help to decide on intensity
    assert statin_drafts(card) == ["atorvastatin 20 mg by mouth once daily", "atorvastatin 40 mg by mouth once daily"]
    assert card["selectionBehavior"] == "at-most-one"
    assert [s.get("isRecommended") for s in card["suggestions"]] == [True, None]


@pytest.mark.parametrize("age,expected", [(39, None), (40, "Diabetes, age 40"), (75, "Diabetes, age 75"), (76, "Age 76")])
def test_diabetes_group_age_edges(client, age, expected):
    """4.3: the diabetes group is 40-75; at 39 (no LDL-C >= 190) there is no card, at 76 the over-75 rule of
    4.4.4 applies (a risk discussion, no draft)."""
    cards = fire(client, birth_date=born(age), conditions=[T2DM], ldl=120)
    if expected is None:
        assert cards == []
        return
    (card,) = cards
    assert card["summary"].startswith(expected)
    if age == 76:
        assert card["indicator"] == "info" and statin_drafts(card) == []
    else:
        assert card["indicator"] == "warning" and statin_drafts(card)


def test_diabetes_with_10_year_risk_of_20_percent_recommends_high_intensity(client):
    """4.3 recommendations 3 and 5: with a 10-year risk of 20% or more a high-intensity statin is reasonable."""
    card = only(client, gender="male", birth_date=born(70), conditions=[T2DM], tc=260, hdl=35, sbp=165, smoker=True, ldl=150)
    assert card["extension"][EXT]["score"] >= 0.20
    assert [s.get("isRecommended") for s in card["suggestions"]] == [None, True]
    assert "high intensity" in card["suggestions"][1]["label"]


def test_diabetes_without_ldl_offers_the_lipid_panel_and_says_the_190_group_was_not_checked(client):
    """4.3 and 4.4.1: a baseline lipid profile documents LDL-C; without it the LDL-C >= 190 group is unknown."""
    card = only(client, birth_date=born(50), conditions=[T2DM], ldl=None)
    assert card["indicator"] == "warning"
    assert [r["code"]["coding"][0]["code"] for r in drafts(card) if r["resourceType"] == "ServiceRequest"] == ["24331-1"]
    assert "could not be checked" in card["detail"]


# ---- finding 5: LDL-C >= 190 mg/dL, age 20-75: high-intensity statin without risk estimation (4.2) ---------

@pytest.mark.parametrize("ldl,severe", [(189, False), (190, True)])
def test_ldl_190_edge(client, ldl, severe):
    """4.2 recommendation 1 (COR I): LDL-C >= 190 mg/dL → maximally tolerated (high-intensity) statin, no PCE."""
    card = only(client, birth_date=born(55), ldl=ldl)
    if severe:
        assert card["indicator"] == "warning" and card["summary"].startswith("LDL-C 190 mg/dL (>= 190)")
        assert statin_drafts(card) == ["atorvastatin 40 mg by mouth once daily"]
        assert card["suggestions"][0]["isRecommended"] is True
        assert "10-year ASCVD risk" not in card["summary"]
    else:
        assert "10-year ASCVD risk" in card["summary"]


@pytest.mark.parametrize("age,card_expected", [(19, False), (20, True), (39, True), (75, True)])
def test_ldl_190_age_range_20_to_75(client, age, card_expected):
    """4.2: the severe hypercholesterolaemia group is 20-75 years; under 20 is not this guideline's adult flow."""
    cards = fire(client, birth_date=born(age), ldl=210)
    assert bool(cards) == card_expected
    if card_expected:
        assert cards[0]["summary"].startswith("LDL-C 210 mg/dL") and statin_drafts(cards[0])


@pytest.mark.parametrize("code,label", [("18262-6", "LDL cholesterol, direct"), ("13457-7", "LDL cholesterol, calculated"),
                                        ("2089-1", "(LDL cholesterol, ")])
def test_every_ldl_code_is_read_and_named(client, code, label):
    """4.2: LDL-C is read under LOINC 18262-6 (direct), 13457-7 (calculated) and 2089-1; the card says which in words
    (the LOINC code is provenance: in the extension, not in the clinician's text)."""
    card = only(client, birth_date=born(50), ldl=200, ldl_code=code)
    assert card["summary"].startswith("LDL-C 200 mg/dL") and label in card["detail"] and code not in card["detail"]


def test_same_day_direct_ldl_is_preferred_to_calculated(client):
    """A direct measurement and a calculated LDL-C of the same day: the direct one is used (and named)."""
    pf = ascvd_prefetch(birth_date=born(50), ldl=150)  # calculated 150
    pf["lipids"]["entry"].append({"resource": quantity_obs("ldl-d", "18262-6", 195, "mg/dL")})
    card = client.post(URL, json=hook_request(prefetch=pf)).get_json()["cards"][0]
    assert card["summary"].startswith("LDL-C 195 mg/dL") and "LDL cholesterol, direct" in card["detail"]


# ---- 4.4.2: age 40-75, LDL-C 70-189, no diabetes: the PCE categories -----------------------------------

@pytest.mark.parametrize("target,category,indicator,draft", [
    (0.049, "Low", "info", None),
    (0.0501, "Borderline", "info", None),
    (0.074, "Borderline", "info", None),
    (0.0751, "Intermediate", "warning", "atorvastatin 20 mg by mouth once daily"),
    (0.199, "Intermediate", "warning", "atorvastatin 20 mg by mouth once daily"),
    (0.2001, "High", "warning", "atorvastatin 40 mg by mouth once daily"),
])
def test_pce_category_edges(client, target, category, indicator, draft):
    """4.4.2: < 5% low, 5 to < 7.5% borderline, 7.5 to < 20% intermediate (moderate-intensity statin, COR I),
    >= 20% high (high-intensity statin, COR I). Patients are built by solving the PCE for total cholesterol."""
    tc = tc_for_risk(target, age=60, sbp=140)
    card = only(client, gender="male", birth_date=born(60), tc=tc, hdl=50, sbp=140, ldl=130)
    score = card["extension"][EXT]["score"]
    assert math.isclose(score, target, abs_tol=2e-4) and (score >= 0.05) == (target >= 0.05)
    assert card["summary"].startswith(category) and card["indicator"] == indicator
    assert statin_drafts(card) == ([draft] if draft else [])


@pytest.mark.parametrize("ldl,in_flow", [(69, False), (70, True)])
def test_ldl_70_edge(client, ldl, in_flow):
    """4.4.2 covers LDL-C 70-189 mg/dL; below 70 the card says the patient is outside the initiation groups, a
    decision the 10-year risk shown beside it did not make (`scoreUsed: false`: the explanation page shows it as context)."""
    card = only(client, gender="male", birth_date=born(60), tc=240, hdl=40, sbp=150, ldl=ldl)
    assert "score" in card["extension"][EXT] and card["extension"][EXT].get("scoreUsed", True) is in_flow
    if in_flow:
        assert "10-year ASCVD risk" in card["summary"]
    else:
        assert card["summary"].startswith("LDL-C 69 mg/dL (< 70)") and statin_drafts(card) == []


# ---- on a statin: adherence, intensity, response (4.4.3), never initiation ---------------------------------

def test_patient_on_a_statin_is_told_so_and_gets_no_initiation(client):
    """4.4.3: on a statin the card is about adherence, intensity and LDL-C response; the PCE from on-treatment
    lipids underestimates the untreated risk. The old card said "Discuss statin therapy"."""
    card = only(client, gender="male", birth_date=born(62), tc=240, hdl=38, sbp=150, smoker=True,
                meds=[med_request("st", "617310", "atorvastatin 20 MG Oral Tablet")])
    assert card["indicator"] == "info" and card["summary"].startswith("On a statin")
    assert "atorvastatin 20 MG Oral Tablet" in card["detail"] and "underestimates" in card["detail"]
    assert statin_drafts(card) == [] and "Discuss statin" not in card["summary"]


def test_on_a_statin_with_an_old_ldl_offers_a_lipid_panel_only(client):
    """4.4.3: LDL-C 4-12 weeks after starting, then every 3-12 months; an LDL-C older than a year → a lipid panel."""
    pf = ascvd_prefetch(birth_date=born(60), meds=[med_request("st", "617310", "rosuvastatin 10 MG Oral Tablet")])
    for e in pf["lipids"]["entry"]:
        e["resource"]["effectiveDateTime"] = f"{date.today().year - 2}-01-01"
    card = client.post(URL, json=hook_request(prefetch=pf)).get_json()["cards"][0]
    assert [r["resourceType"] for r in drafts(card)] == ["ServiceRequest"]
    assert drafts(card)[0]["code"]["coding"][0]["code"] == "24331-1"


# ---- over 75: clinical assessment and risk discussion (4.4.4) -----------------------------------------------

@pytest.mark.parametrize("age,card_expected", [(75, True), (76, True), (79, True), (80, False)])
def test_older_adult_edges(client, age, card_expected):
    """4.4.4: over 75 a statin is a clinician-patient decision, no draft; the PCE tops out at 79: no card at 80."""
    cards = fire(client, gender="male", birth_date=born(age), tc=260, hdl=35, sbp=170, smoker=True, ldl=160)
    assert bool(cards) == card_expected
    if age >= 76 and card_expected:
        (card,) = cards
        assert card["indicator"] == "info" and card["summary"].startswith(f"Age {age}") and statin_drafts(card) == []
    elif age == 75:
        assert statin_drafts(cards[0])  # 75 is still in the 40-75 group


def test_ldl_190_at_77_is_a_discussion_not_a_draft(client):
    """4.2 applies to 20-75; at 77 the over-75 discussion of 4.4.4 applies even with LDL-C >= 190."""
    card = only(client, birth_date=born(77), ldl=220)
    assert card["summary"].startswith("Age 77") and statin_drafts(card) == []


# ---- clinical ASCVD: secondary prevention, the PCE does not apply (4.1) -----------------------------------

@pytest.mark.parametrize("code", ["I25.10", "I25.119", "I21.4", "I24.9", "I63.9", "G45.9", "Z86.73", "I69.351",
                                  "I70.211", "I70.25", "Z95.1", "Z95.5", "Z98.61", "I73.9"])
def test_clinical_ascvd_codes_give_a_secondary_prevention_card(client, code):
    """4.1: clinical ASCVD (MI, ACS, angina, revascularization, stroke, TIA, PAD) is secondary prevention: an
    info card that the PCE does not apply, no score, no statin draft. Z86.73, I69.3, I70.2 and I25.1x were missed."""
    card = only(client, birth_date=born(60), conditions=[condition("c", ICD10, code, status="resolved")])
    assert card["indicator"] == "info" and "secondary prevention" in card["summary"] and "does not apply" in card["summary"]
    assert "score" not in card["extension"][EXT] and "suggestions" not in card
    assert card["extension"][EXT]["statinBenefitGroup"] == "secondary-prevention"


@pytest.mark.parametrize("code", ["G45.4", "I10", "I71.4"])
def test_codes_outside_clinical_ascvd_keep_the_primary_prevention_flow(client, code):
    """G45.4 transient global amnesia is not a TIA; hypertension and an aortic aneurysm of unstated origin are
    not clinical ASCVD in the set (4.1): the primary-prevention flow continues."""
    card = only(client, birth_date=born(60), conditions=[condition("c", ICD10, code)])
    assert "10-year ASCVD risk" in card["summary"]


# ---- treated hypertension: every drug class (PCE input) ----------------------------------------------------

@pytest.mark.parametrize("drug", ["chlorthalidone 25 MG Oral Tablet", "furosemide 40 MG Oral Tablet",
                                  "spironolactone 25 MG Oral Tablet", "eplerenone 25 MG Oral Tablet",
                                  "doxazosin 2 MG Oral Tablet", "clonidine 0.1 MG Oral Tablet",
                                  "hydralazine 25 MG Oral Tablet", "aliskiren 150 MG Oral Tablet",
                                  "diltiazem 120 MG Extended Release Oral Capsule", "nebivolol 5 MG Oral Tablet",
                                  "amiloride 5 MG Oral Tablet", "candesartan 8 MG Oral Tablet"])
def test_every_antihypertensive_class_counts_as_treated(client, drug):
    """The PCE's "treated hypertension": thiazides, loop and potassium-sparing diuretics, MRAs, alpha-blockers,
    centrally acting drugs, direct vasodilators, renin inhibitors, CCBs, beta-blockers, ACE inhibitors, ARBs."""
    card = only(client, birth_date=born(60), sbp=150, meds=[med_request("m", "999", drug)])
    assert card["extension"][EXT]["features"]["bp_treated"]["value"] == 1.0


# ---- risk-enhancing factors named, or said not assessable (4.4.1) ----------------------------------------

def family_history(role="FTH", age=50, code="22298006"):
    return {"resourceType": "FamilyMemberHistory", "id": "fh1", "status": "completed", "patient": {"reference": "Patient/p1"},
            "relationship": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": role}]},
            "condition": [{"code": {"coding": [{"system": SNOMED, "code": code}]},
                           "onsetAge": {"value": age, "unit": "a", "system": "http://unitsofmeasure.org", "code": "a"}}]}


def test_risk_enhancers_present_are_named(client):
    """4.4.1: family history of premature ASCVD (father, MI at 50), Lp(a) >= 50 mg/dL, South Asian ancestry."""
    pf_extra = {"family_history": bundle(family_history()),
                "enhancer_labs": bundle(quantity_obs("lpa", "10835-7", 62, "mg/dL"))}
    pf = ascvd_prefetch(gender="male", birth_date=born(55), ldl=130)
    pf["patient"]["extension"] = [{"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race", "extension": [
        {"url": "ombCategory", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2028-9"}},
        {"url": "detailed", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2029-7"}},
        {"url": "text", "valueString": "Asian Indian"}]}]
    pf.update(pf_extra)
    card = client.post(URL, json=hook_request(prefetch=pf)).get_json()["cards"][0]
    present = [line for line in card["detail"].splitlines() if line.startswith("- Present:")]
    assert any("Family history of premature ASCVD" in p and "FTH at age 50" in p for p in present)
    assert any("Lp(a)" in p and "62 mg/dL" in p for p in present)
    assert any("South Asian ancestry" in p for p in present)


@pytest.mark.parametrize("age,present", [(54, True), (55, False)])
def test_family_history_premature_edge_for_a_male_relative(client, age, present):
    """4.4.1: premature ASCVD in a male first-degree relative is before 55."""
    card = only(client, {"family_history": bundle(family_history(age=age))}, birth_date=born(55))
    assert any(line.startswith("- Present: Family history") for line in card["detail"].splitlines()) == present


def test_unavailable_and_not_recorded_are_worded_differently(client):
    """Unavailable data (no prefetch, no FHIR access) is "not available to the service"; a key that was answered
    empty (PREFETCH-6 null) is "not recorded" / not present — never the other way round."""
    unavailable = only(client, birth_date=born(55))
    assert "Not assessed, data not available to the service:" in unavailable["detail"]
    assert "Family history of premature ASCVD" in unavailable["detail"].split("data not available to the service:")[1]
    answered = only(client, {"family_history": None, "enhancer_labs": None, "glycaemia": None, "pregnancy_status": None},
                    birth_date=born(55))
    assert "not available to the service" not in answered["detail"]
    assert "Not assessed, no usable value:" in answered["detail"]


@pytest.mark.parametrize("values,present", [((160, 170), True), ((159, 170), False), ((200,), False)])
def test_persistent_ldl_160_edge(client, values, present):
    """4.4.1: persistently elevated LDL-C >= 160 mg/dL (every result of the last 5 years, at least two)."""
    pf = ascvd_prefetch(birth_date=born(55), ldl=None, tc=240)
    for i, v in enumerate(values):
        pf["lipids"]["entry"].append({"resource": quantity_obs(f"l{i}", "13457-7", v, "mg/dL", date=f"{date.today().year - 1 - i}-03-01")})
    card = client.post(URL, json=hook_request(prefetch=pf)).get_json()["cards"][0]
    if values == (200,):
        return  # one value >= 190 is the 4.2 group; persistence is not the question there
    line = [x for x in card["detail"].splitlines() if "LDL-C >= 160" in x]
    assert line and line[0].startswith("- Present:") == present


# ---- who the service is for: pregnancy, and the equations' own range (applicability) -------------

PREGNANCY = condition("preg", ICD10, "Z34.00", onset=f"{date.today().year}-01-01")
ATORVASTATIN = med_request("st", "617310", "atorvastatin 20 MG Oral Tablet")


@pytest.mark.parametrize("pregnant", [False, True])
def test_no_statin_draft_in_pregnancy_and_the_card_says_why(client, pregnant):
    """2018 AHA/ACC 4.5.2 (women): statins are not used in pregnancy or breastfeeding. LDL-C 200 mg/dL at 30 is the
    4.2 group (high-intensity statin draft) — and in pregnancy an info card saying why no statin is suggested,
    with no draft and no score. Fails on the old service, which drafted atorvastatin 40 mg for a pregnant woman."""
    card = only(client, birth_date=born(30), ldl=200, conditions=[PREGNANCY] if pregnant else [])
    if not pregnant:
        assert card["summary"].startswith("LDL-C 200 mg/dL") and statin_drafts(card)
        return
    assert card["indicator"] == "info" and "pregnancy or breastfeeding" in card["summary"] and "4.5.2" in card["summary"]
    assert drafts(card) == [] and "score" not in card["extension"][EXT]
    assert "stopped as soon as the pregnancy is discovered" in card["detail"]


def test_pregnant_on_a_statin_is_warned_to_review_it(client):
    """2018 AHA/ACC 4.5.2 (COR I): a statin taken when a pregnancy is discovered is stopped: the card is a warning
    that names the statin on record (the old card was "On a statin: review adherence")."""
    card = only(client, birth_date=born(32), meds=[ATORVASTATIN], conditions=[PREGNANCY])
    assert card["indicator"] == "warning" and "A statin is on record: atorvastatin 20 MG Oral Tablet" in card["detail"]
    assert drafts(card) == []


@pytest.mark.parametrize("gender,noted", [("female", True), ("male", False)])
def test_pregnancy_status_not_obtained_is_said_for_a_woman_and_not_for_a_man(client, gender, noted):
    """Unavailable is not absent: the pregnancy status (82810-3) not obtained leaves pregnancy "not checked" on a
    woman's card (the problem list was read); for a man the criterion holds without being judged (`only_if`)."""
    card = only(client, gender=gender, birth_date=born(55))
    assert ("**Not checked:** not pregnant or breastfeeding" in card["detail"]) == noted
    answered = only(client, {"pregnancy_status": None}, gender=gender, birth_date=born(55))
    assert "Not checked" not in answered["detail"]


@pytest.mark.parametrize("hba1c,in_range", [(6.4, False), (6.5, True)])
def test_an_hba1c_in_the_diabetes_range_without_a_diagnosis_gets_no_risk(client, hba1c, in_range):
    """ADA 2026 section 2 (HbA1c >= 6.5 % is the diabetes range) and 2018 AHA/ACC 4.3: with a result in the
    diabetes range and no diagnosis the statin group depends on a diagnosis not yet made; the Pooled Cohort
    Equations take diabetes as an input, so no 10-year risk computed as if it were absent is shown (no risk
    percentage next to a diagnostic HbA1c). At 6.4 % the risk category stands."""
    card = only(client, {"glycaemia": bundle(quantity_obs("a1c", "4548-4", hba1c, "%"))}, birth_date=born(55))
    if not in_range:
        assert "10-year ASCVD risk" in card["summary"] and "score" in card["extension"][EXT]
        return
    assert card["summary"].startswith("HbA1c 6.5% (diabetes range), no diabetes diagnosis recorded")
    assert "score" not in card["extension"][EXT] and drafts(card) == [] and "%" not in card["summary"].split("%", 1)[1]


@pytest.mark.parametrize("fasting,ogtt,in_range", [(125, None, False), (126, None, True), (None, 199, False), (None, 200, True)])
def test_glucose_in_the_diabetes_range_without_a_diagnosis_gets_no_risk(client, fasting, ogtt, in_range):
    """ADA 2026 section 2: fasting plasma glucose >= 126 mg/dL, 2-hour OGTT glucose >= 200 mg/dL (both sides)."""
    results = [quantity_obs("fpg", "1558-6", fasting, "mg/dL")] if fasting else [quantity_obs("ogtt", "1518-0", ogtt, "mg/dL")]
    card = only(client, {"glycaemia": bundle(*results)}, birth_date=born(55))
    assert ("diabetes range" in card["summary"]) == in_range
    assert ("score" in card["extension"][EXT]) == (not in_range)


def test_glucose_results_not_obtained_are_said_on_the_risk_card(client):
    """Unavailable is not absent: without the glucose results the risk card says undiagnosed diabetes was not
    checked (the 10-year risk takes diabetes as absent)."""
    card = only(client, birth_date=born(55))
    assert "Undiagnosed diabetes not checked" in card["detail"] and "not available to the service" in card["detail"]


@pytest.mark.parametrize("age,scored", [(39, False), (40, True)])
def test_the_equations_run_only_in_their_own_range(client, age, scored):
    """Goff 2013: the Pooled Cohort Equations were derived for 40-79 (`scope = "model"`): at 39 with LDL-C 200 mg/dL
    the 4.2 card carries no 10-year risk in its numbers; at 40 the risk is computed (and not needed for 4.2)."""
    card = only(client, birth_date=born(age), ldl=200)
    assert card["summary"].startswith("LDL-C 200 mg/dL")
    assert ("score" in card["extension"][EXT]) == scored
    outside = card["extension"][EXT]["applicability"].get("model", {}).get("outside", [])
    assert bool(outside) == (not scored)


# ---- both sides of every risk-enhancing factor's threshold (4.4.1, 4.3) -------------------------------------

def _present(card: dict) -> list[str]:
    return [line for line in card["detail"].splitlines() if line.startswith("- Present:")]


def _with_triglycerides(*values: float) -> dict:
    """The factory's lipid panel plus triglyceride results (2571-8) a year apart."""
    lipids = ascvd_prefetch()["lipids"]
    tg = [quantity_obs(f"tg{i}", "2571-8", v, "mg/dL", date=f"{date.today().year - i}-01-15") for i, v in enumerate(values)]
    return {"lipids": bundle(*(e["resource"] for e in lipids["entry"]), *tg)}


@pytest.mark.parametrize("label,extra,present", [
    ("hs-CRP >= 2 mg/L", {"enhancer_labs": bundle(quantity_obs("crp", "30522-7", 1.9, "mg/L"))}, False),
    ("hs-CRP >= 2 mg/L", {"enhancer_labs": bundle(quantity_obs("crp", "30522-7", 2.0, "mg/L"))}, True),
    ("Lp(a)", {"enhancer_labs": bundle(quantity_obs("lpa", "10835-7", 49, "mg/dL"))}, False),
    ("Lp(a)", {"enhancer_labs": bundle(quantity_obs("lpa", "10835-7", 50, "mg/dL"))}, True),
    ("Lp(a)", {"enhancer_labs": bundle(quantity_obs("lpa", "43583-4", 124, "nmol/L"))}, False),
    ("Lp(a)", {"enhancer_labs": bundle(quantity_obs("lpa", "43583-4", 125, "nmol/L"))}, True),
    ("ApoB >= 130", {"enhancer_labs": bundle(quantity_obs("apob", "1884-6", 129, "mg/dL"))}, False),
    ("ApoB >= 130", {"enhancer_labs": bundle(quantity_obs("apob", "1884-6", 130, "mg/dL"))}, True),
    ("Chronic kidney disease", {"enhancer_labs": bundle(quantity_obs("gfr", "98979-8", 60, "mL/min/{1.73_m2}"))}, False),
    ("Chronic kidney disease", {"enhancer_labs": bundle(quantity_obs("gfr", "98979-8", 59, "mL/min/{1.73_m2}"))}, True),
    ("Chronic kidney disease", {"enhancer_labs": bundle(quantity_obs("gfr", "98979-8", 15, "mL/min/{1.73_m2}"))}, True),
    ("Chronic kidney disease", {"enhancer_labs": bundle(quantity_obs("gfr", "98979-8", 14, "mL/min/{1.73_m2}"))}, False),
    ("triglycerides >= 175", _with_triglycerides(174, 200), False),
    ("triglycerides >= 175", _with_triglycerides(175, 200), True),
    ("triglycerides >= 175", _with_triglycerides(300), False),   # one result is not "persistently"
])
def test_risk_enhancer_thresholds(client, label, extra, present):
    """2018 AHA/ACC 4.4.1 (risk-enhancing factors): hs-CRP >= 2.0 mg/L; Lp(a) >= 50 mg/dL or >= 125 nmol/L; apoB
    >= 130 mg/dL; chronic kidney disease (eGFR 15-59); persistently elevated triglycerides >= 175 mg/dL (two or more
    results) — both sides of each."""
    card = only(client, extra, gender="male", birth_date=born(55), ldl=130)
    assert any(label in line for line in _present(card)) == present, card["detail"]


def _diabetes(years_type2=None, years_type1=None) -> list[dict]:
    out = []
    if years_type2 is not None:
        out.append(condition("t2", ICD10, "E11.9", onset=f"{date.today().year - years_type2}-01-01"))
    if years_type1 is not None:
        out.append(condition("t1", ICD10, "E10.9", onset=f"{date.today().year - years_type1}-01-01"))
    return out


@pytest.mark.parametrize("label,conditions,labs,present", [
    ("Type 2 diabetes for >= 10 years", _diabetes(years_type2=9), [], False),
    ("Type 2 diabetes for >= 10 years", _diabetes(years_type2=10), [], True),
    ("Type 1 diabetes for >= 20 years", _diabetes(years_type1=19), [], False),
    ("Type 1 diabetes for >= 20 years", _diabetes(years_type1=20), [], True),
    ("Albuminuria", _diabetes(years_type2=2), [quantity_obs("uacr", "9318-7", 29, "mg/g")], False),
    ("Albuminuria", _diabetes(years_type2=2), [quantity_obs("uacr", "9318-7", 30, "mg/g")], True),
    ("eGFR < 60", _diabetes(years_type2=2), [quantity_obs("gfr", "98979-8", 60, "mL/min/{1.73_m2}")], False),
    ("eGFR < 60", _diabetes(years_type2=2), [quantity_obs("gfr", "98979-8", 59, "mL/min/{1.73_m2}")], True),
])
def test_diabetes_specific_risk_enhancer_thresholds(client, label, conditions, labs, present):
    """2018 AHA/ACC 4.3 (diabetes-specific risk enhancers): type 2 diabetes >= 10 years, type 1 >= 20 years,
    albuminuria >= 30 mcg albumin/mg creatinine, eGFR < 60 mL/min/1.73 m² — both sides of each."""
    card = only(client, {"enhancer_labs": bundle(*labs)}, birth_date=born(55), conditions=conditions, ldl=120)
    assert card["summary"].startswith("Diabetes, age 55")
    assert any(label in line for line in _present(card)) == present, card["detail"]


@pytest.mark.parametrize("days,panel", [(364, False), (366, True)])
def test_on_a_statin_the_lipid_panel_is_offered_after_a_year(client, days, panel):
    """2018 AHA/ACC 4.4.3: on a statin LDL-C every 3-12 months once adherence is established (`recheck_days` 365): an
    LDL-C 364 days old asks for nothing, one 366 days old offers a lipid panel."""
    pf = ascvd_prefetch(birth_date=born(60), meds=[med_request("st", "617310", "rosuvastatin 10 MG Oral Tablet")])
    when = (date.today() - timedelta(days=days)).isoformat()
    for e in pf["lipids"]["entry"]:
        e["resource"]["effectiveDateTime"] = when
    card = client.post(URL, json=hook_request(prefetch=pf)).get_json()["cards"][0]
    assert card["summary"].startswith("On a statin")
    assert ([d["code"]["coding"][0]["code"] for d in drafts(card)] == ["24331-1"]) == panel
