"""Clinical scenarios for `renal-dosing` (order-sign) and `renal-dosing-select` (order-select), each a plain FHIR R4 request through HTTP.

Sources encoded (cited in each docstring):
- FDA Drug Safety Communication on metformin and kidney function (April 2016): eGFR < 30 contraindicated,
  30–45 not to be started.
- KDIGO 2024 Clinical Practice Guideline for the Evaluation and Management of CKD, chapter 4 (medication
  management and drug stewardship): avoid systemic NSAIDs at GFR < 30 and prolonged use in CKD; the NSAID +
  ACE inhibitor/ARB + diuretic combination ("triple whammy") raises the risk of acute kidney injury; topical
  NSAIDs are an alternative with low systemic exposure. eGFR equations do not apply on dialysis.
- US prescribing information: Eliquis 2.2 and 8.6 (apixaban dose-reduction criteria; ESRD on dialysis),
  Xarelto 2.2 and 8.6 (rivaroxaban CrCl table; CrCl < 15 and ESRD on dialysis), Pradaxa 2.2 (dabigatran),
  Savaysa boxed warning and 2.2 (edoxaban).
"""
from __future__ import annotations

import re

import pytest

from cds_testing.fhir_factory import CPT, ICD10, SNOMED, procedure
from cds_testing.order_helpers import (
    actions,
    birth_for,
    bundle,
    creatinine_for_egfr,
    draft,
    obs,
    post_renal,
    predictions,
    when,
)


def condition(cid, code, *, system=ICD10, status="active"):
    return {"resourceType": "Condition", "id": cid, "subject": {"reference": "Patient/p1"},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": status}]},
            "code": {"coding": [{"system": system, "code": code}]}, "onsetDateTime": "2020-01-01"}


def body(*orders, hook="order-sign", age=70, female=False, creatinine=1.0, weight=80.0, af=True, conditions=(), meds=(),
         procedures=()):
    ctx = {"userId": "Practitioner/example", "patientId": "p1", "draftOrders": bundle(*orders, type_="collection")}
    if hook == "order-select":
        ctx["selections"] = [f"MedicationRequest/{orders[0]['id']}"]
    prefetch = {
        "patient": {"resourceType": "Patient", "id": "p1", "gender": "female" if female else "male", "birthDate": birth_for(age)},
        "creatinine": bundle(obs("cr", "2160-0", creatinine, "mg/dL", at="@ago:3d")),
        "weight": bundle(*([obs("wt", "29463-7", weight, "kg")] if weight is not None else [])),
        "conditions": bundle(*([condition("af", "49436004", system=SNOMED)] if af else []), *conditions),
        "medications": bundle(*meds),
        "procedures": bundle(*procedures),
    }
    return {"hook": hook, "hookInstance": "3a9e6c1b-2d4f-4e8a-9c7b-5f6e7d8c9b0a", "context": ctx, "prefetch": prefetch}


def at_egfr(target, *orders, age=70, female=False, **kw):
    return body(*orders, age=age, female=female, creatinine=creatinine_for_egfr(target, age, female), **kw)


def at_crcl(value, *orders, **kw):
    """Age 68, male, creatinine 2.0 mg/dL: Cockcroft-Gault CrCl = (140 − 68) × weight / (72 × 2) = weight / 2 (mL/min)."""
    return body(*orders, age=68, creatinine=2.0, weight=2 * value, **kw)


def kinds(cards) -> list[tuple[str, list[str]]]:
    return [(c["indicator"], [a["type"] for a in actions(c)]) for c in cards]


NAPROXEN = "naproxen 500 MG Oral Tablet"


# ---- topical NSAIDs ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("order", [
    draft("g1", "diclofenac sodium 10 MG/ML Topical Gel", dose_text="apply 4 g to the knee four times daily"),
    {**draft("g1", "diclofenac", dose_text="2 g to the knee four times daily"),
     "dosageInstruction": [{"text": "2 g to the knee four times daily",
                            "route": {"coding": [{"system": "http://snomed.info/sct", "code": "6064005", "display": "Topical route"}]}}]},
    draft("g1", "diclofenac epolamine 180 MG Transdermal System", dose_text="one patch twice daily"),
    draft("g1", "ketorolac tromethamine 5 MG/ML Ophthalmic Solution", dose_text="one drop four times daily"),
    {"resourceType": "MedicationRequest", "id": "g1", "status": "draft", "intent": "order", "subject": {"reference": "Patient/p1"},
     "contained": [{"resourceType": "Medication", "id": "m", "code": {"text": "ibuprofen 5 %"},
                    "form": {"coding": [{"system": "http://snomed.info/sct", "code": "385101003", "display": "Cutaneous gel"}],
                             "text": "gel"}}],
     "medicationReference": {"reference": "#m"}, "dosageInstruction": [{"text": "apply three times daily"}]},
])
def test_topical_nsaid_at_egfr_27_gets_no_card(module_client, order):
    """Finding 8. KDIGO 2024 chapter 4: the systemic-NSAID rule (avoid at GFR < 30) is for systemic NSAIDs; topical
    NSAIDs (route topical/transdermal/ophthalmic, or a gel, patch, cream or eye-drop product) have low systemic
    exposure and are the recommended alternative — no card and never a one-click delete, at any eGFR."""
    assert post_renal(module_client, at_egfr(27, order)) == []


@pytest.mark.parametrize("target, expect", [(29.9, [("warning", ["delete"])]), (30.1, [])])
def test_oral_nsaid_both_sides_of_egfr_30(module_client, target, expect):
    """KDIGO 2024 chapter 4 (and KDIGO 2012 4.4): avoid systemic NSAIDs at eGFR < 30 — a warning with removal of
    the NSAID order; at 30 and above (no ACE inhibitor/ARB with a diuretic) no card."""
    assert kinds(post_renal(module_client, at_egfr(target, draft("n1", "diclofenac sodium 50 MG Delayed Release Oral Tablet", mg=50, per_day=3)))) == expect


# ---- the triple whammy --------------------------------------------------------------------------------------

LISINOPRIL = draft("ace", "lisinopril 10 MG Oral Tablet", status="active")
FUROSEMIDE = draft("diu", "furosemide 40 MG Oral Tablet", mg=40, per_day=1)


@pytest.mark.parametrize("target, expect", [
    (29.9, "avoid"),      # below 30 the avoid rule speaks (one card)
    (30.0, "triple"),
    (44.5, "triple"),
    (59.9, "triple"),
    (60.0, None),
])
def test_triple_whammy_nsaid_with_ace_inhibitor_and_diuretic_at_egfr_30_to_59(module_client, target, expect):
    """Finding 8. KDIGO 2024 chapter 4: an NSAID with an ACE inhibitor or ARB and a diuretic ("triple whammy") raises
    the risk of acute kidney injury; at eGFR 30–59 a warning with removal of the NSAID being signed."""
    cards = post_renal(module_client, at_egfr(target, draft("n1", NAPROXEN, mg=500, per_day=2), FUROSEMIDE, meds=[LISINOPRIL]))
    if expect is None:
        assert cards == []
        return
    (card,) = cards
    assert card["indicator"] == "warning"
    assert {a["resourceId"] for a in actions(card) if a["type"] == "delete"} == {"MedicationRequest/n1"}
    if expect == "triple":
        assert "ACE inhibitor or ARB" in card["summary"] or "triple" in card["summary"].lower()
        assert "lisinopril" in card["detail"] and "furosemide" in card["detail"] and "KDIGO 2024" in card["source"]["label"]


@pytest.mark.parametrize("others, meds, fires", [
    ([], [LISINOPRIL], False),                                                           # no diuretic
    ([FUROSEMIDE], [], False),                                                           # no ACE inhibitor/ARB
    ([draft("arb", "losartan potassium 50 MG Oral Tablet", mg=50, per_day=1)],
     [draft("hctz", "hydrochlorothiazide 25 MG Oral Tablet", status="active")], True),  # ARB ordered now + thiazide active
])
def test_triple_whammy_needs_both_a_raas_blocker_and_a_diuretic(module_client, others, meds, fires):
    """KDIGO 2024 chapter 4: the combination is the NSAID with BOTH an ACE inhibitor/ARB and a diuretic, active or
    ordered in the same session."""
    cards = post_renal(module_client, at_egfr(45, draft("n1", NAPROXEN, mg=500, per_day=2), *others, meds=meds))
    assert bool(cards) is fires


def test_triple_whammy_never_fires_on_a_topical_nsaid(module_client):
    """Finding 8. KDIGO 2024 chapter 4: the triple-whammy rule is for systemic NSAIDs."""
    gel = draft("g1", "diclofenac sodium 10 MG/ML Topical Gel", dose_text="apply four times daily")
    assert post_renal(module_client, at_egfr(45, gel, FUROSEMIDE, meds=[LISINOPRIL])) == []


def test_triple_whammy_at_order_select_removes_only_the_selected_nsaid(module_client):
    """HOOK-OSEL-4 with KDIGO 2024 chapter 4: at order-select the NSAID being selected is judged; its removal is the
    one-click action, the diuretic (another draft) is co-medication only."""
    cards = post_renal(module_client, at_egfr(45, draft("n1", NAPROXEN, mg=500, per_day=2), FUROSEMIDE, hook="order-select", meds=[LISINOPRIL]))
    (card,) = cards
    assert [a.get("resourceId") for a in actions(card)] == ["MedicationRequest/n1"]


# ---- dialysis -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("order, drug", [
    (draft("m1", "metformin hydrochloride 500 MG Oral Tablet", mg=500, per_day=2), "metformin"),
    (draft("a1", "apixaban 5 MG Oral Tablet", mg=5, per_day=2), "apixaban"),
    (draft("r1", "rivaroxaban 20 MG Oral Tablet", mg=20, per_day=1), "rivaroxaban"),
    (draft("d1", "dabigatran etexilate 150 MG Oral Capsule", mg=150, per_day=2), "dabigatran"),
])
def test_on_dialysis_egfr_is_not_used_and_no_dose_change_is_computed(module_client, order, drug):
    """Finding 8. KDIGO 2024 (eGFR is not meaningful on kidney replacement therapy); the labels' dialysis guidance
    (Eliquis 8.6: 5 mg twice daily on dialysis unless age ≥ 80 or weight ≤ 60 kg; Xarelto 8.6: 15 mg once daily in
    AF on dialysis from pharmacokinetic data; Pradaxa: no dosing recommendation on dialysis; metformin contraindicated
    in severe renal impairment). Dependence on dialysis (Z99.2): the card says eGFR/CrCl does not apply and gives the
    label's dialysis advice; no one-click dose change computed from eGFR or CrCl."""
    cards = post_renal(module_client, body(order, creatinine=6.5, weight=70, conditions=[condition("dx", "Z99.2")]))
    (card,) = cards
    assert "dialysis" in card["summary"].lower() and drug in card["summary"].lower()
    assert "not meaningful on dialysis" in card["detail"]
    assert not any(a["type"] == "update" for a in actions(card))
    assert not re.search(r"(eGFR|CrCl) \d", card["summary"]) and "**Renal function:**" not in card["detail"]  # no value used


@pytest.mark.parametrize("conditions, procedures, on_dialysis", [
    ([condition("dx", "Z99.2")], [], True),
    ([condition("dx", "Z49.31")], [], True),                                     # encounter for haemodialysis adequacy
    ([condition("dx", "Z99.2", status="resolved")], [], False),                  # no longer on dialysis
    ([condition("tx", "Z94.0")], [], False),                                     # kidney transplant: the graft's eGFR counts
    ([], [procedure("hd", SNOMED, "302497006", when("@ago:10d"))], True),        # haemodialysis (SNOMED)
    ([], [procedure("hd", CPT, "90935", when("@ago:45d"))], False),              # a session 45 days ago: not current
])
def test_dialysis_code_set_edges(module_client, conditions, procedures, on_dialysis):
    """KDIGO 2024 (eGFR equations are for people not on kidney replacement therapy): an active dependence on dialysis
    (Z99.2, Z49.x) or a dialysis session in the last 30 days switches to the label's dialysis guidance; a resolved
    Z99.2, a kidney transplant (Z94.0) or an old session does not (metformin at eGFR 25 then gets the eGFR card)."""
    (card,) = post_renal(module_client, at_egfr(25, draft("m1", "metformin hydrochloride 500 MG Oral Tablet", mg=500, per_day=2),
                                            conditions=conditions, procedures=procedures))
    assert ("on dialysis" in card["summary"]) is on_dialysis
    assert ("eGFR 25" in card["summary"]) is not on_dialysis


def test_dialysis_procedure_in_the_last_30_days_counts(module_client):
    """KDIGO 2024: kidney replacement therapy detected from a recent haemodialysis procedure (CPT 90935) as well as
    from the problem list."""
    hd = procedure("hd", CPT, "90935", when("@ago:2d"))
    (card,) = post_renal(module_client, body(draft("a1", "apixaban 5 MG Oral Tablet", mg=5, per_day=2), creatinine=7.0, procedures=[hd]))
    assert "dialysis" in card["summary"].lower() and not actions(card)


def test_end_stage_kidney_disease_without_dialysis_keeps_crcl_rules_and_says_dialysis_unknown(module_client):
    """ICD-10-CM N18.6 (end-stage renal disease) asks for Z99.2 to code dialysis status; without it the CrCl rule
    applies but the card names the uncertainty (on dialysis the label's dialysis guidance would apply instead)."""
    cards = post_renal(module_client, at_crcl(12, draft("d1", "dabigatran etexilate 150 MG Oral Capsule", mg=150, per_day=2),
                                          conditions=[condition("esrd", "N18.6")]))
    (card,) = cards
    assert "CrCl" in card["summary"] and "dialysis is not on record" in card["detail"]


# ---- rivaroxaban below CrCl 15 in AF ----------------------------------------------------------------------------

@pytest.mark.parametrize("crcl, af, expect", [
    (14.0, True, ("warning", [])),          # AF: follow the label's table, review — no delete
    (15.0, True, ("warning", ["update"])),  # 15–50 → 15 mg once daily
    (14.0, False, ("warning", ["delete"])), # VTE at CrCl < 15: the label says avoid
])
def test_rivaroxaban_below_crcl_15_in_af_is_reviewed_not_deleted(module_client, crcl, af, expect):
    """Finding 8. Xarelto US label 2.2/8.6: in nonvalvular AF the dose for CrCl ≤ 50 is 15 mg once daily; patients
    with CrCl < 15 were not studied (ESRD on dialysis: 15 mg once daily from pharmacokinetic data) — advise review
    with the label's table instead of a one-click delete. For VTE treatment the label says avoid at CrCl < 15."""
    cards = post_renal(module_client, at_crcl(crcl, draft("r1", "rivaroxaban 20 MG Oral Tablet", mg=20, per_day=1), af=af))
    (card,) = cards
    assert kinds([card]) == [expect]
    if af and crcl < 15:
        assert "15 mg once daily" in card["detail"] and "review" in card["summary"].lower()


# ---- both sides of every threshold -------------------------------------------------------------------------------

@pytest.mark.parametrize("target, expect", [
    (29.9, ("critical", ["delete"])), (30.0, ("warning", ["delete"])),
    (44.9, ("warning", ["delete"])), (45.0, None),
])
def test_metformin_at_egfr_29_30_44_45(module_client, target, expect):
    """FDA Drug Safety Communication (April 2016): metformin contraindicated at eGFR < 30; starting it at eGFR 30–45
    is not recommended; no card from 45."""
    cards = post_renal(module_client, at_egfr(target, draft("m1", "metformin hydrochloride 500 MG Oral Tablet", mg=500, per_day=2)))
    assert kinds(cards) == ([expect] if expect else [])


@pytest.mark.parametrize("drug, mg, per_day, crcl, expect", [
    ("dabigatran etexilate 150 MG Oral Capsule", 150, 2, 14.9, ("critical", ["delete"])),
    ("dabigatran etexilate 150 MG Oral Capsule", 150, 2, 15.0, ("warning", ["update"])),
    ("rivaroxaban 20 MG Oral Tablet", 20, 1, 50.0, ("warning", ["update"])),
    ("rivaroxaban 20 MG Oral Tablet", 20, 1, 51.0, None),
    ("edoxaban 60 MG Oral Tablet", 60, 1, 50.0, ("warning", ["update"])),
    ("edoxaban 60 MG Oral Tablet", 60, 1, 51.0, None),
    ("edoxaban 60 MG Oral Tablet", 60, 1, 95.0, None),
    ("edoxaban 60 MG Oral Tablet", 60, 1, 96.0, ("warning", ["delete"])),
])
def test_doac_crcl_14_15_50_51_95_96(module_client, drug, mg, per_day, crcl, expect):
    """Pradaxa 2.2 (CrCl < 15 no dose; 15–30 in AF 75 mg twice daily), Xarelto 2.2 (AF: CrCl ≤ 50 15 mg, > 50 20 mg
    once daily), Savaysa 2.2 and boxed warning (15–50 30 mg; > 95 in AF do not use)."""
    cards = post_renal(module_client, at_crcl(crcl, draft("d1", drug, mg=mg, per_day=per_day)))
    assert kinds(cards) == ([expect] if expect else [])
    if cards:
        assert predictions(cards[0])["cockcroft-gault-1976"]["score"] == pytest.approx(crcl)


@pytest.mark.parametrize("age, weight, creatinine, ordered, expect", [
    (80, 61.0, 1.4, 5, None),      # one criterion (age): 5 mg is right
    (80, 60.0, 1.4, 5, 2.5),       # two criteria (age, weight): 2.5 mg
])
def test_apixaban_one_versus_two_dose_reduction_criteria(module_client, age, weight, creatinine, ordered, expect):
    """Eliquis US label 2.2 (nonvalvular AF): 2.5 mg twice daily when at least two of age ≥ 80, weight ≤ 60 kg,
    serum creatinine ≥ 1.5 mg/dL; otherwise 5 mg twice daily."""
    cards = post_renal(module_client, body(draft("a1", f"apixaban {ordered:g} MG Oral Tablet", mg=ordered, per_day=2),
                                       age=age, weight=weight, creatinine=creatinine))
    if expect is None:
        assert cards == []
    else:
        (card,) = cards
        assert actions(card)[0]["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == expect


@pytest.mark.parametrize("age,card_expected", [(17, False), (18, True)])
def test_adults_only(module_client, age, card_expected):
    """`[[population]]` adults: CKD-EPI 2021 (Inker 2021), Cockcroft-Gault and the label doses are adult. Metformin at
    eGFR 25 gets the FDA 2016 contraindication at 18 and no card at 17 (silent: NSAIDs and metformin are ordered for
    children, and a "not checked" card at each order would be noise)."""
    metformin = draft("m1", "metformin hydrochloride 500 MG Oral Tablet", mg=500, per_day=2)
    cards = post_renal(module_client, body(metformin, age=age, creatinine=creatinine_for_egfr(25, 18, False)))
    assert bool(cards) == card_expected
    if card_expected:
        assert cards[0]["indicator"] == "critical"
