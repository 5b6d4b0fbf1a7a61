"""care-gaps scenarios from the ADA Standards of Care in Diabetes—2025 (Diabetes Care 2025;48(Suppl 1)),
sections 6, 10 and 11, and the 2025 AHA/ACC high blood pressure guideline (3.1.2, Table 6): both sides of
every interval, every UACR code. Each is a plain FHIR R4 appointment-book request through the HTTP API."""
from __future__ import annotations

from datetime import date

import pytest

from cds_testing.fhir_factory import patient
from cds_testing.order_helpers import actions, bundle, obs, post, when

LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"



def condition(cid, code, onset: str | None = "@ago:3000d"):
    c = {"resourceType": "Condition", "id": cid, "code": {"coding": [{"system": ICD10, "code": code}]},
         "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]}}
    if onset:
        c["onsetDateTime"] = when(onset)
    return c


def order(mid, text, at="@ago:400d", status="active"):
    return {"resourceType": "MedicationRequest", "id": mid, "status": status, "intent": "order",
            "medicationCodeableConcept": {"text": text}, "authoredOn": when(at), "subject": {"reference": "Patient/p1"}}


def appointment(days_ahead: float):
    start = when(f"@ahead:{days_ahead}d") if days_ahead >= 0 else when(f"@ago:{-days_ahead}d")
    return {"resourceType": "Appointment", "id": "apt1", "status": "proposed", "start": start}


def gaps(module_client, conditions, labs, meds=(), *, days_ahead=-1, age=55, meds_key=True):
    """Fire appointment-book. A past appointment start (the default) judges the gaps at booking time."""
    prefetch = {"patient": patient(birth_date=f"{date.today().year - age}-01-01"), "conditions": bundle(*conditions),
                "labs": bundle(*labs)}
    if meds_key:
        prefetch["medications"] = bundle(*meds)
    body = {"hook": "appointment-book", "hookInstance": "5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e",
            "context": {"userId": "PractitionerRole/A2340113", "patientId": "p1", "appointments": bundle(appointment(days_ahead))},
            "prefetch": prefetch}
    cards = post(module_client, "care-gaps", body)
    return cards[0] if cards else None


def due(card) -> set[str]:
    return {a["resource"]["code"]["coding"][0]["code"] for a in actions(card)} if card else set()


T2 = [condition("dm", "E11.9")]
HBA1C, BMP, UACR, LIPIDS = "4548-4", "51990-0", "9318-7", "24331-1"


def done(days=20, a1c=6.5):
    """Every test done `days` ago, HbA1c at goal."""
    at = f"@ago:{days}d"
    return [obs("a1c", HBA1C, a1c, "%", at=at), obs("cr", "2160-0", 1.0, "mg/dL", at=at),
            obs("uacr", "9318-7", 12, "mg/g", at=at), obs("ldl", "13457-7", 95, "mg/dL", at=at)]


def with_(labs, replacement):
    return [lab for lab in labs if lab["id"] != replacement["id"]] + [replacement]


# ---- finding 9: UACR under every code --------------------------------------------------------------------

@pytest.mark.parametrize("code", ["9318-7", "14959-1", "32294-1"])
def test_every_uacr_code_counts(module_client, code):
    """11.1a: a urine albumin/creatinine ratio 60 days ago is on record whether reported under 9318-7 (mass ratio),
    14959-1 (microalbumin/creatinine mass ratio) or 32294-1 (ratio). 14959-1 was shown "never on record, due"."""
    labs = with_(done(), {**obs("uacr", code, 12, "mg/g", at="@ago:60d")})
    assert UACR not in due(gaps(module_client, T2, labs))


# ---- section 6: HbA1c twice a year at goal, quarterly above goal or after a therapy change -----------------

@pytest.mark.parametrize("days,is_due", [(183, False), (184, True)])
def test_hba1c_at_goal_twice_a_year(module_client, days, is_due):
    """ADA 2025 section 6: at least twice a year when meeting goals: due once older than 183 days."""
    labs = with_(done(), obs("a1c", HBA1C, 6.6, "%", at=f"@ago:{days}d"))
    assert (HBA1C in due(gaps(module_client, T2, labs))) == is_due


@pytest.mark.parametrize("a1c,days,is_due", [(7.0, 92, False), (7.0, 93, True), (6.9, 93, False), (8.4, 100, True)])
def test_hba1c_above_goal_quarterly(module_client, a1c, days, is_due):
    """ADA 2025 section 6: at least quarterly when not meeting goals (HbA1c >= 7%, the general goal): due once
    older than 92 days; 6.9% is below the goal and stays on the twice-a-year interval."""
    labs = with_(done(), obs("a1c", HBA1C, a1c, "%", at=f"@ago:{days}d"))
    card = gaps(module_client, T2, labs)
    assert (HBA1C in due(card)) == is_due
    if is_due:
        assert "not below the goal" in card["detail"] and "quarterly" in card["detail"]


@pytest.mark.parametrize("authored,status,is_due", [("@ago:30d", "active", True), ("@ago:60d", "stopped", True),
                                                    ("@ago:120d", "active", False)])
def test_hba1c_quarterly_after_a_therapy_change(module_client, authored, status, is_due):
    """ADA 2025 section 6: quarterly when therapy has recently changed: a glucose-lowering drug ordered, changed or
    stopped in the last 92 days; HbA1c at goal 100 days old is then due."""
    labs = with_(done(), obs("a1c", HBA1C, 6.5, "%", at="@ago:100d"))
    meds = [order("m", "empagliflozin 10 MG Oral Tablet", at=authored, status=status)]
    assert (HBA1C in due(gaps(module_client, T2, labs, meds))) == is_due


# ---- section 11 (11.1a): UACR and eGFR yearly in type 2 from diagnosis, type 1 after 5 years ---------------

@pytest.mark.parametrize("days,is_due", [(365, False), (366, True)])
def test_kidney_tests_yearly_in_type_2(module_client, days, is_due):
    """11.1a and Fig. 11.1: UACR and eGFR at least once a year in type 2 diabetes."""
    at = f"@ago:{days}d"
    labs = with_(with_(done(), obs("cr", "2160-0", 1.0, "mg/dL", at=at)), obs("uacr", "9318-7", 12, "mg/g", at=at))
    assert ({BMP, UACR} <= due(gaps(module_client, T2, labs))) == is_due


def test_type_2_diagnosed_two_months_ago_is_screened_from_diagnosis(module_client):
    """11.1a: type 2 diabetes regardless of duration: no UACR on record → due."""
    labs = [lab for lab in done() if lab["id"] != "uacr"]
    assert UACR in due(gaps(module_client, [condition("dm", "E11.65", onset="@ago:60d")], labs))


@pytest.mark.parametrize("onset,is_due", [("@ago:1460d", False), ("@ago:1830d", True)])
def test_type_1_kidney_screening_starts_after_5_years(module_client, onset, is_due):
    """11.1a: type 1 diabetes with a duration of 5 years or more; at 4 years the card says when it starts."""
    labs = with_([lab for lab in done() if lab["id"] not in ("uacr", "cr")], obs("a1c", HBA1C, 6.5, "%", at="@ago:190d"))
    card = gaps(module_client, [condition("dm", "E10.9", onset=onset)], labs)  # the old HbA1c makes a card either way
    assert due(card) == ({HBA1C, UACR, BMP} if is_due else {HBA1C})
    if not is_due:
        assert "start 5 years after diagnosis" in card["detail"]


def test_type_1_with_unknown_onset_says_so(module_client):
    """11.1a needs the duration of type 1 diabetes: an unrecorded onset is said on the card, and the yearly
    tests are listed (the safer side)."""
    labs = [lab for lab in done() if lab["id"] != "uacr"]
    card = gaps(module_client, [condition("dm", "E10.9", onset=None)], labs)
    assert UACR in due(card) and "onset not recorded" in card["detail"]


# ---- section 10: lipid profile -------------------------------------------------------------------------------

def test_lipids_4_to_12_weeks_after_starting_a_statin(module_client):
    """ADA 2025 section 10: a lipid profile 4-12 weeks after starting lipid-lowering therapy: started 30 days ago,
    last lipid profile before the start → due; "lipid profile yearly" was a misquote."""
    labs = with_(done(), obs("ldl", "13457-7", 150, "mg/dL", at="@ago:60d"))
    card = gaps(module_client, T2, labs, [order("st", "atorvastatin 20 MG Oral Tablet", at="@ago:30d")])
    assert LIPIDS in due(card) and "4-12 weeks after the start" in card["detail"]


@pytest.mark.parametrize("started,is_due", [("@ago:20d", False), ("@ago:29d", True)])
def test_lipids_not_before_4_weeks_after_the_start(module_client, started, is_due):
    """ADA 2025 section 10: not before 4 weeks (28 days) after the start, judged at the visit date."""
    labs = with_(done(), obs("ldl", "13457-7", 150, "mg/dL", at="@ago:60d"))
    assert (LIPIDS in due(gaps(module_client, T2, labs, [order("st", "rosuvastatin 10 MG Oral Tablet", at=started)]))) == is_due


@pytest.mark.parametrize("days,is_due", [(365, False), (366, True)])
def test_lipids_yearly_on_therapy(module_client, days, is_due):
    """ADA 2025 section 10: then annually on lipid-lowering therapy."""
    labs = with_(done(), obs("ldl", "13457-7", 90, "mg/dL", at=f"@ago:{days}d"))
    assert (LIPIDS in due(gaps(module_client, T2, labs, [order("st", "atorvastatin 20 MG Oral Tablet", at="@ago:900d")]))) == is_due


@pytest.mark.parametrize("age,days,is_due", [(35, 1825, False), (35, 1827, True), (55, 1900, False)])
def test_lipids_without_therapy(module_client, age, days, is_due):
    """ADA 2025 section 10: without lipid-lowering therapy, at diagnosis / initial evaluation and every 5 years
    under 40; at 40 and over no repeat interval is set (not "yearly")."""
    labs = with_(done(), obs("ldl", "13457-7", 90, "mg/dL", at=f"@ago:{days}d"))
    assert (LIPIDS in due(gaps(module_client, T2, labs, age=age))) == is_due


def test_lipids_never_done_are_due_without_therapy(module_client):
    """ADA 2025 section 10: a lipid profile at diagnosis or the initial medical evaluation."""
    labs = [lab for lab in done() if lab["id"] != "ldl"]
    assert LIPIDS in due(gaps(module_client, T2, labs, age=60))


def test_medications_not_available_is_said_and_the_yearly_interval_applied(module_client):
    """Without the medication list the lipid rule cannot tell therapy apart: the stricter yearly interval is used
    and the card says the medications were not available to the service (not "no therapy")."""
    labs = with_(done(), obs("ldl", "13457-7", 90, "mg/dL", at="@ago:400d"))
    card = gaps(module_client, T2, labs, meds_key=False)
    assert LIPIDS in due(card) and "not available to the service" in card["detail"]


# ---- hypertension alone: 2025 AHA/ACC high blood pressure guideline, tests at diagnosis --------------------

def test_hypertension_alone_lists_only_tests_never_done(module_client):
    """2025 AHA/ACC high blood pressure guideline 3.1.2, Table 6: creatinine/eGFR, lipid profile and UACR at
    diagnosis, no repeat interval: a 3-year-old creatinine is not due, a never-done UACR is; no HbA1c rule."""
    labs = [obs("cr", "2160-0", 1.0, "mg/dL", at="@ago:1100d"), obs("ldl", "13457-7", 90, "mg/dL", at="@ago:1100d")]
    card = gaps(module_client, [condition("htn", "I10")], labs)
    assert due(card) == {UACR}
    assert "[OUR CHOICE]" not in card["detail"] and "Table 6" in card["detail"]


# ---- who the service is for, and results that could not be obtained -----------------------------

def _body(conditions, labs=None, *, age=55):
    prefetch = {"patient": patient(birth_date=f"{date.today().year - age}-01-01"), "conditions": bundle(*conditions),
                "medications": bundle()}
    if labs is not None:
        prefetch["labs"] = bundle(*labs)
    return {"hook": "appointment-book", "hookInstance": "5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e",
            "context": {"userId": "PractitionerRole/A2340113", "patientId": "p1", "appointments": bundle(appointment(-1))},
            "prefetch": prefetch}


def test_results_not_obtained_are_could_not_be_checked_never_due(module_client):
    """Unavailable is not absent: without the laboratory results (no prefetch, no FHIR access)
    every test that applies is a row "could not be checked — not available to the service", never "due", never
    "not recorded", and nothing is ordered (a test may already be recent). The old service answered 412 — no card."""
    (card,) = post(module_client, "care-gaps", _body(T2))
    assert card["summary"].startswith("Before the visit on") and "could not check HbA1c" in card["summary"]
    assert actions(card) == [] and "tests due" not in card["summary"]
    assert card["detail"].count("**could not be checked** — not available to the service") == 4
    assert "not recorded" not in card["detail"]


@pytest.mark.parametrize("age,card_expected", [(17, False), (18, True)])
def test_adults_only(module_client, age, card_expected):
    """ADA 2025 section 14: children and adolescents have their own monitoring; the 2025 AHA/ACC guideline is for
    adults. A 17-year-old with type 1 diabetes gets no card (silent: a "not for children" card at each booking
    would be noise), an 18-year-old the adult rules."""
    cards = post(module_client, "care-gaps", _body([condition("dm", "E10.9", onset="@ago:4000d")], [], age=age))
    assert bool(cards) == card_expected


def test_neither_diabetes_nor_hypertension_gets_no_card(module_client):
    """The population: diabetes or hypertension on the problem list; a patient with neither gets no card."""
    assert post(module_client, "care-gaps", _body([condition("ckd", "N18.31")], [])) == []


@pytest.mark.parametrize("lipid_days,due_now", [(300, False), (400, True)])
def test_a_statin_ordered_without_a_profile_in_the_year_before_gets_one_at_initiation(module_client, lipid_days, due_now):
    """ADA 2025 section 10: a lipid profile at the initiation of lipid-lowering therapy, 4-12 weeks after, then
    yearly. A statin ordered 5 days ago with the last profile 300 days old waits for the 4-12 week profile; with
    the last profile 400 days old the profile at initiation is due now (the old service deferred it 4 weeks while
    ascvd-10y-risk asked for it at the same visit)."""
    labs = with_(done(), obs("ldl", "13457-7", 150, "mg/dL", at=f"@ago:{lipid_days}d"))
    card = gaps(module_client, T2, labs, [order("st", "atorvastatin 20 MG Oral Tablet", at="@ago:5d")])
    assert (LIPIDS in due(card)) == due_now
    if due_now:
        assert "a profile at initiation" in card["detail"]


@pytest.mark.parametrize("age,is_due", [(39, True), (40, False)])
def test_lipids_every_5_years_under_40_and_no_repeat_interval_from_40(module_client, age, is_due):
    """ADA 2025 section 10: without lipid-lowering therapy a lipid profile every 5 years under 40; from 40 the
    guideline sets no repeat interval (at diagnosis or the initial evaluation only): a profile 1900 days old is due
    at 39 and not at 40."""
    labs = with_(done(), obs("ldl", "13457-7", 90, "mg/dL", at="@ago:1900d"))
    assert (LIPIDS in due(gaps(module_client, T2, labs, age=age))) == is_due
