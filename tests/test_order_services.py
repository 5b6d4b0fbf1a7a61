"""Order-time safety: reading draftOrders, renal-dosing-select (order-select) and renal-dosing (order-sign),
af-anticoagulation on order-sign. Every card is checked against CARD-1..5, SRC-1, SUGG-1, ACT-1, OVR-1
and GEN-2 on the JSON the endpoint returns (order_helpers.post)."""
from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from cds_testing.order_helpers import (
    EXT,
    RXNORM,
    actions,
    birth_for,
    bundle,
    creatinine_for_egfr,
    draft,
    fixture,
    obs,
    post,
    post_renal,
    predictions,
)
from fhir_adapters.orders import Dose, adjusted_order, context_resources, medication_orders, ordered_dose
from hooks import ServiceFileError
from models.equations.ckd_epi import egfr
from models.equations.cockcroft_gault import crcl

HOOKS = Path(__file__).resolve().parent.parent / "hooks"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"



def condition(cid, system, code, status="active"):
    return {"resourceType": "Condition", "id": cid, "subject": {"reference": "Patient/p1"},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": status}]},
            "code": {"coding": [{"system": system, "code": code}]}, "onsetDateTime": "2020-01-01"}


def renal_body(*orders, hook="order-sign", age=70, female=False, creatinine=1.0, cr_unit="mg/dL", cr_at="@ago:5d",
               weight=80.0, af=True, meds=(), selections=None):
    ctx = {"userId": "Practitioner/example", "patientId": "p1", "draftOrders": bundle(*orders, type_="collection")}
    if hook == "order-select":
        ctx["selections"] = selections or [f"MedicationRequest/{orders[0]['id']}"]
    prefetch = {
        "patient": {"resourceType": "Patient", "id": "p1", "gender": "female" if female else "male", "birthDate": birth_for(age)},
        "creatinine": bundle(*([obs("cr", "2160-0" if cr_unit == "mg/dL" else "14682-9", creatinine, cr_unit, at=cr_at)]
                               if creatinine is not None else [])),
        "weight": bundle(*([obs("wt", "29463-7", weight, "kg")] if weight is not None else [])),
        "conditions": bundle(*([condition("af", SNOMED, "49436004")] if af else [])),
        "medications": bundle(*meds),
    }
    return {"hook": hook, "hookInstance": "5b7d0c1e-4f0a-4c8e-9a77-1d2e3f4a5b6c", "context": ctx, "prefetch": prefetch}


def renal(module_client, *orders, **kw):
    return post_renal(module_client, renal_body(*orders, **kw))


# ---- reading draftOrders (HOOK-OSEL-4/5, HOOK-OSIGN-4) -----------------------------------------------

def test_hook_osel4_only_selections_are_judged_and_others_are_co_medication():
    ctx = fixture("order-select-rivaroxaban.json")["context"]
    orders = medication_orders(ctx)
    assert [(o.id, o.selected) for o in orders] == [("rx-riva", True), ("rx-ibu", False)]  # NutritionOrder is not a drug
    assert orders[0].matches((), ("rivaroxaban",)) and orders[1].matches((f"{RXNORM}|5640",))


def test_hook_osign4_resigned_orders_count_and_contained_or_referenced_medications_resolve():
    ctx = fixture("order-sign-session.json")["context"]
    orders = {o.id: o for o in medication_orders(ctx)}
    assert set(orders) == {"rx-dabi", "rx-met", "rx-nap"}  # cancelled order skipped, ServiceRequest ignored
    assert orders["rx-met"].status == "active" and orders["rx-met"].selected  # re-signed, not draft
    assert orders["rx-dabi"].text == "dabigatran etexilate 150 MG Oral Capsule"  # contained Medication (#med1)
    assert orders["rx-met"].text == "metformin hydrochloride 500 MG Oral Tablet"  # Bundle Medication by fullUrl
    by_id = {"draftOrders": bundle({"resourceType": "Medication", "id": "m9", "code": {"text": "apixaban 5 MG Oral Tablet"}},
                                   {"resourceType": "MedicationRequest", "id": "r9", "status": "draft",
                                    "medicationReference": {"reference": "Medication/m9"}})}
    assert medication_orders(by_id)[0].text == "apixaban 5 MG Oral Tablet"


def test_hook_ab4_context_resources_reads_bundle_and_bare_array():
    appt = {"resourceType": "Appointment", "id": "a1", "status": "proposed"}
    assert context_resources([appt]) == context_resources(bundle(appt)) == [appt]
    assert context_resources(None) == [] and context_resources({"resourceType": "Patient"}) == []


@pytest.mark.parametrize("dosage, text, expected", [
    ({"doseAndRate": [{"doseQuantity": {"value": 150, "code": "mg"}}], "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}},
     "dabigatran 150 MG Oral Capsule", Dose(150, 2)),
    ({"doseAndRate": [{"doseQuantity": {"value": 2, "code": "{tbl}"}}], "timing": {"repeat": {"frequency": 1, "period": 12, "periodUnit": "h"}}},
     "apixaban 2.5 MG Oral Tablet", Dose(5, 2)),
    ({"text": "5 mg twice daily"}, "apixaban", Dose(5, 2)),
    ({"doseQuantity": {"value": 1, "unit": "tablet"}, "timing": {"code": {"coding": [{"code": "QD"}]}}},  # STU3 shape
     "edoxaban 60 MG Oral Tablet", Dose(60, 1)),
    ({"text": "as directed"}, "warfarin", Dose(None, None)),
])
def test_ordered_dose_from_structure_then_text(dosage, text, expected):
    order = medication_orders({"draftOrders": bundle({"resourceType": "MedicationRequest", "id": "x", "status": "draft",
                                                      "medicationCodeableConcept": {"text": text}, "dosageInstruction": [dosage]})})[0]
    assert ordered_dose(order) == expected


def test_act1_adjusted_order_is_the_complete_resource():
    ctx = fixture("order-sign-session.json")["context"]
    dabi = next(o for o in medication_orders(ctx) if o.id == "rx-dabi")
    new = adjusted_order(dabi, mg=75, per_day=2, text="75 mg twice daily", ingredient="dabigatran",
                         ingredient_code=f"{RXNORM}|1037042", form="Oral Capsule", product="dabigatran etexilate")
    assert new["id"] == "rx-dabi" and new["status"] == "draft" and new["subject"] == {"reference": "Patient/ckd-4"}
    assert new["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"] == {"value": 75, "unit": "mg",
                                                                            "system": "http://unitsofmeasure.org", "code": "mg"}
    assert new["medicationCodeableConcept"]["coding"] == [{"system": RXNORM, "code": "1037042", "display": "dabigatran"}]
    assert "medicationReference" not in new and "contained" not in new  # dom-3: no orphan contained Medication
    assert dabi.resource["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 150  # input untouched
    # the same strength keeps the ordered product
    same = adjusted_order(dabi, mg=150, per_day=2, text="150 mg twice daily", ingredient="dabigatran",
                          ingredient_code=f"{RXNORM}|1037042")
    assert same["medicationReference"] == {"reference": "#med1"} and same["contained"]


# ---- renal-dosing: realistic requests ------------------------------------------------------------------

def test_order_select_judges_the_selection_only_and_updates_the_dose(module_client):
    """HOOK-OSEL-4: the unselected ibuprofen (eGFR < 30) gets no card; rivaroxaban gets the CrCl dose."""
    body = fixture("order-select-rivaroxaban.json")
    cards = post(module_client, "renal-dosing-select", body)
    assert len(cards) == 1
    card = cards[0]
    scr, age = 230 / 88.42, _age("1952-04-11")
    wt = 172 * 0.45359237
    expected_crcl = crcl(scr, age, wt, False)
    assert 15 <= expected_crcl <= 50 and egfr(scr, age, False) < 30
    assert card["indicator"] == "warning" and "15 mg once daily" in card["summary"] and "ordered: 20 mg once daily" in card["summary"]
    assert card["source"]["label"].startswith("Xarelto") and card["source"]["url"]
    assert card["selectionBehavior"] == "at-most-one" and card["suggestions"][0]["isRecommended"] is True
    (action,) = actions(card)
    assert action["type"] == "update" and action["description"]
    r = action["resource"]
    original = body["context"]["draftOrders"]["entry"][1]["resource"]
    for key in ("id", "status", "intent", "subject", "encounter", "requester", "reasonCode", "dispenseRequest", "authoredOn"):
        assert r[key] == original[key]  # ACT-1: the complete resource, not a patch
    d = r["dosageInstruction"][0]
    assert d["doseAndRate"][0]["doseQuantity"]["value"] == 15 and d["timing"]["repeat"] == {"frequency": 1, "period": 1, "periodUnit": "d"}
    assert d["route"] == original["dosageInstruction"][0]["route"]
    assert r["medicationCodeableConcept"]["coding"][0]["code"] == "1114195"
    preds = predictions(card)
    assert preds["cockcroft-gault-1976"]["score"] == pytest.approx(expected_crcl, abs=1e-4)
    assert preds["ckd-epi-2021"]["score"] == pytest.approx(egfr(scr, age, False), abs=1e-4)
    feats = card["extension"][EXT]["features"]
    assert feats["creatinine"]["evidence"] == ["Observation/cr-new"] and feats["creatinine"]["value"] == pytest.approx(scr)


def test_the_same_session_at_order_sign_judges_every_order(module_client):
    body = fixture("order-select-rivaroxaban.json")
    body["hook"] = "order-sign"
    del body["context"]["selections"]
    cards = post(module_client, "renal-dosing", body)
    assert sorted(c["summary"].split()[0] for c in cards) == ["Avoid", "Rivaroxaban"]
    nsaid = next(c for c in cards if c["summary"].startswith("Avoid"))
    assert "ibuprofen" in nsaid["summary"] and nsaid["source"]["label"].startswith("KDIGO")
    assert actions(nsaid) == [{"type": "delete", "description": actions(nsaid)[0]["description"], "resourceId": "MedicationRequest/rx-ibu"}]


def test_order_sign_session_with_several_orders_and_a_resign(module_client):
    cards = post(module_client, "renal-dosing", fixture("order-sign-session.json"))
    by_ref = {a.get("resourceId") or a["resource"]["id"]: c for c in cards for a in actions(c)}
    assert set(by_ref) == {"rx-dabi", "MedicationRequest/rx-met", "MedicationRequest/rx-nap"}
    dabi = by_ref["rx-dabi"]
    assert dabi["indicator"] == "warning" and "75 mg twice daily" in dabi["summary"]
    assert actions(dabi)[0]["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 75
    met = by_ref["MedicationRequest/rx-met"]  # re-signed active order is judged too (HOOK-OSIGN-4)
    assert met["indicator"] == "critical" and "contraindicated" in met["summary"]
    assert by_ref["MedicationRequest/rx-nap"]["indicator"] == "warning"
    assert len({c["uuid"] for c in cards}) == 3


def _age(birth: str) -> int:
    b, on = date.fromisoformat(birth), datetime.now(timezone.utc).date()
    return on.year - b.year - ((on.month, on.day) < (b.month, b.day))


# ---- renal-dosing: every rule boundary ------------------------------------------------------------------

MET = dict(mg=500, per_day=2)


@pytest.mark.parametrize("target, taking, ordered, expect", [
    (29.9, False, MET, ("critical", "delete")),
    (29.9, True, MET, ("critical", "delete")),       # below 30: stop even if already taking
    (30.1, False, MET, ("warning", "delete")),       # 30-44: do not start
    (44.9, True, dict(mg=1000, per_day=2), ("warning", "update")),  # already taking: reduce to ≤ 1000 mg/day
    (44.9, True, MET, None),                          # already at ≤ 1000 mg/day: nothing to say
    (45.1, False, MET, None),
])
def test_metformin_egfr_boundaries_fda_2016(module_client, target, taking, ordered, expect):
    scr = creatinine_for_egfr(target, 70, False)
    meds = [draft("active-met", "metformin", status="active", code="6809")] if taking else []
    cards = renal(module_client, draft("m1", "metformin hydrochloride 500 MG Oral Tablet", **ordered), creatinine=scr, meds=meds)
    if expect is None:
        assert cards == []
        return
    (card,) = cards
    assert (card["indicator"], actions(card)[0]["type"]) == expect
    assert card["source"]["url"].startswith("https://www.fda.gov/")
    if expect[1] == "update":
        dose = actions(card)[0]["resource"]["dosageInstruction"][0]
        assert dose["doseAndRate"][0]["doseQuantity"]["value"] == 500 and dose["timing"]["repeat"]["frequency"] == 2
        assert "Already taking metformin" in card["detail"]


@pytest.mark.parametrize("target, fires", [(29.9, True), (30.1, False)])
def test_nsaid_avoided_below_egfr_30_kdigo(module_client, target, fires):
    cards = renal(module_client, draft("n1", "naproxen sodium 550 MG Oral Tablet", mg=550, per_day=2),
                  creatinine=creatinine_for_egfr(target, 60, True), female=True, age=60)
    assert bool(cards) is fires
    if fires:
        assert cards[0]["indicator"] == "warning" and actions(cards[0])[0]["resourceId"] == "MedicationRequest/n1"


# Age 68, male: CrCl = 72 × weight / (72 × creatinine) = weight / creatinine, so weight sets CrCl exactly.
@pytest.mark.parametrize("drug, ordered, scr, weight, af, expect", [
    ("dabigatran etexilate 150 MG Oral Capsule", (150, 2), 2.0, 29.8, True, ("critical", "delete", None)),   # CrCl 14.9
    ("dabigatran etexilate 150 MG Oral Capsule", (150, 2), 2.0, 30.0, True, ("warning", "update", 75)),      # 15
    ("dabigatran etexilate 150 MG Oral Capsule", (150, 2), 2.0, 60.0, True, ("warning", "update", 75)),      # 30
    ("dabigatran etexilate 150 MG Oral Capsule", (150, 2), 2.0, 60.2, True, None),                           # 30.1: 150 is right
    ("dabigatran etexilate 75 MG Oral Capsule", (75, 2), 2.0, 60.2, True, ("info", "update", 150)),          # under-dosed
    ("dabigatran etexilate 150 MG Oral Capsule", (150, 2), 2.0, 50.0, False, ("warning", "delete", None)),   # not AF, ≤ 30
    ("rivaroxaban 20 MG Oral Tablet", (20, 1), 2.0, 29.8, True, ("warning", None, None)),                    # 14.9: review, no delete
    ("rivaroxaban 20 MG Oral Tablet", (20, 1), 2.0, 30.0, True, ("warning", "update", 15)),                  # 15
    ("rivaroxaban 20 MG Oral Tablet", (20, 1), 1.0, 50.0, True, ("warning", "update", 15)),                  # 50
    ("rivaroxaban 20 MG Oral Tablet", (20, 1), 1.0, 50.2, True, None),                                       # 50.2
    ("edoxaban 60 MG Oral Tablet", (60, 1), 2.0, 29.8, True, ("warning", "delete", None)),                   # 14.9
    ("edoxaban 60 MG Oral Tablet", (60, 1), 2.0, 30.0, True, ("warning", "update", 30)),                     # 15
    ("edoxaban 60 MG Oral Tablet", (60, 1), 1.0, 50.0, True, ("warning", "update", 30)),                     # 50
    ("edoxaban 60 MG Oral Tablet", (60, 1), 1.0, 50.2, True, None),                                          # 50.2
    ("edoxaban 60 MG Oral Tablet", (60, 1), 1.0, 95.0, True, None),                                          # 95
    ("edoxaban 60 MG Oral Tablet", (60, 1), 1.0, 95.2, True, ("warning", "delete", None)),                   # > 95 in AF
    ("edoxaban 60 MG Oral Tablet", (60, 1), 1.0, 95.2, False, None),                                         # not AF
])
def test_doac_crcl_boundaries_as_labelled(module_client, drug, ordered, scr, weight, af, expect):
    cards = renal(module_client, draft("d1", drug, mg=ordered[0], per_day=ordered[1]), age=68, creatinine=scr, weight=weight, af=af)
    assert crcl(scr, 68, weight, False) == pytest.approx(weight / scr)
    if expect is None:
        assert cards == []
        return
    (card,) = cards
    assert (card["indicator"], actions(card)[0]["type"] if actions(card) else None) == expect[:2]
    assert card["source"]["url"].startswith("https://dailymed.nlm.nih.gov/")
    if expect[2] is not None:
        assert actions(card)[0]["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == expect[2]
    assert predictions(card)["cockcroft-gault-1976"]["score"] == pytest.approx(weight / scr, abs=1e-6)


@pytest.mark.parametrize("age, weight, scr, ordered, expect", [
    (79, 60.0, 1.5, 5, 2.5),     # weight ≤ 60 and creatinine ≥ 1.5: two criteria
    (80, 61.0, 1.5, 5, 2.5),     # age ≥ 80 and creatinine
    (80, 60.0, 1.0, 5, 2.5),     # age and weight
    (79, 60.1, 1.5, 5, None),    # one criterion: 5 mg is right
    (80, 61.0, 1.49, 5, None),
    (79, 60.1, 1.5, 2.5, 5),     # one criterion but 2.5 mg ordered: off-label low dose
    (80, None, 1.5, 5, 2.5),     # weight unknown, already two criteria: decided
])
def test_apixaban_dose_reduction_criteria(module_client, age, weight, scr, ordered, expect):
    cards = renal(module_client, draft("a1", f"apixaban {ordered:g} MG Oral Tablet", mg=ordered, per_day=2), age=age, weight=weight, creatinine=scr)
    if expect is None:
        assert cards == []
        return
    (card,) = cards
    assert card["indicator"] == "warning" and card["source"]["label"].startswith("Eliquis")
    new = actions(card)[0]["resource"]
    assert new["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == expect
    assert new["medicationCodeableConcept"]["text"] == f"apixaban {expect:g} MG Oral Tablet"


def test_apixaban_undecidable_without_weight_names_it(module_client):
    cards = renal(module_client, draft("a1", "apixaban 5 MG Oral Tablet", mg=5, per_day=2), age=80, weight=None, creatinine=1.0)
    (card,) = cards
    assert card["indicator"] == "info" and "body weight" in card["summary"].lower()
    assert "suggestions" not in card  # creatinine is known: no panel to order


def test_no_recent_creatinine_gives_an_info_card_with_a_metabolic_panel(module_client):
    cards = renal(module_client, draft("m1", "metformin 500 MG Oral Tablet", mg=500, per_day=2),
                  draft("d1", "dabigatran etexilate 150 MG Oral Capsule", mg=150, per_day=2), creatinine=1.0, cr_at="@ago:120d")
    (card,) = cards
    assert card["indicator"] == "info" and card["summary"].startswith("Renal function unknown")
    assert "metformin" in card["summary"] and "dabigatran" in card["summary"]
    assert "older than 90 days" in card["detail"]
    (action,) = actions(card)
    assert action["type"] == "create" and action["resource"]["resourceType"] == "ServiceRequest"
    assert action["resource"]["code"]["coding"][0] == {"system": "http://loinc.org", "code": "51990-0",
                                                      "display": "Basic metabolic panel - Blood"}
    assert action["resource"]["subject"] == {"reference": "Patient/p1"}


def test_creatinine_in_umol_per_litre_is_divided_by_88_42(module_client):
    scr_umol = creatinine_for_egfr(29.5, 70, False) * 88.42
    cards = renal(module_client, draft("m1", "metformin 500 MG Oral Tablet", mg=500, per_day=2), creatinine=scr_umol, cr_unit="umol/L")
    assert cards and predictions(cards[0])["ckd-epi-2021"]["score"] == pytest.approx(29.5, abs=1e-6)


def test_no_renally_relevant_order_no_card(module_client):
    cards = renal(module_client, draft("x1", "amoxicillin 500 MG Oral Capsule", mg=500, per_day=3), creatinine=4.0)
    assert cards == []


def test_children_get_no_adult_rules(module_client):
    assert renal(module_client, draft("m1", "metformin 500 MG Oral Tablet", mg=500, per_day=2), age=15, creatinine=3.0) == []


def test_renal_dosing_has_one_id_per_hook_and_the_two_files_stay_identical(module_client):
    """One id per hook, so that a client keeping one service per id (the CDS Hooks Sandbox) reaches both; the two
    files may differ only in id, hook and title."""
    def neutral(name, sid, hook):
        lines = (HOOKS / name).read_text().splitlines()
        assert f'id = "{sid}"' in lines and f'hook = "{hook}"' in lines
        return [line for line in lines if not line.startswith(("id = ", "hook = ", "title = "))]

    assert neutral("renal-dosing-select.toml", "renal-dosing-select", "order-select") == neutral("renal-dosing.toml", "renal-dosing", "order-sign")
    services = module_client.get("/cds-services").get_json()["services"]
    ids = [s["id"] for s in services]
    assert len(ids) == len(set(ids)), "every bundled service has its own id"
    assert {(s["id"], s["hook"]) for s in services if s["id"].startswith("renal-dosing")} == {
        ("renal-dosing", "order-sign"), ("renal-dosing-select", "order-select")}


def test_disc5_one_id_for_two_hooks_is_still_served(make_app):
    """DISC-5 stays supported: a service file per hook under one id, each request routed by its `hook`."""
    sign = (HOOKS / "renal-dosing.toml").read_text()
    select = (HOOKS / "renal-dosing-select.toml").read_text().replace('id = "renal-dosing-select"', 'id = "renal-dosing"')
    client = make_app(services={"renal-dosing.order-sign": sign, "renal-dosing.order-select": select}).test_client()
    services = client.get("/cds-services").get_json()["services"]
    assert sorted(s["hook"] for s in services if s["id"] == "renal-dosing") == ["order-select", "order-sign"]
    select_body = fixture("order-select-rivaroxaban.json")
    (card,) = post(client, "renal-dosing", select_body)  # only the selection is judged (HOOK-OSEL-4)
    assert "Rivaroxaban" in card["summary"]
    sign_body = fixture("order-select-rivaroxaban.json")
    sign_body["hook"] = "order-sign"
    del sign_body["context"]["selections"]
    assert len(post(client, "renal-dosing", sign_body)) == 2  # every order is judged at signing (HOOK-OSIGN-4)


@pytest.mark.parametrize("old, new, message", [
    ('dose = "reduced"\nsummary = "Apixaban', 'dose = "tiny"\nsummary = "Apixaban', "must name one of the drug's doses"),
    ('summary = "Edoxaban at CrCl {value} mL/min (below 15): not recommended"',
     'summary = "Edoxaban at CrCl {value} mL/min (below 15): not recommended ' + "x" * 120 + '"', "CARD-2"),
    ('secondary = ["equation:cockcroft-gault-1976"]', 'secondary = ["equation:nope"]', "model.secondary\\[0\\]: cannot load 'equation:nope'"),
    ('secondary = ["equation:cockcroft-gault-1976"]', 'secondary = []',
     'model.secondary: builder \'renal_dosing\' needs \\[model\\] secondary = \\["equation:cockcroft-gault-1976"\\]'),
    ('ref = "equation:ckd-epi-2021"', 'ref = "equation:cockcroft-gault-1976"', 'needs \\[model\\] ref = "equation:ckd-epi-2021"'),
    ('{ feature = "weight", le = 60', '{ feature = "mass", le = 60', "'mass' is not a declared feature"),
])
def test_renal_service_file_errors_stop_start_up(make_app, tmp_path, old, new, message):
    d = tmp_path / "hooks"
    d.mkdir()
    text = (HOOKS / "renal-dosing.toml").read_text()
    assert old in text
    (d / "renal-dosing.toml").write_text(text.replace(old, new, 1))
    with pytest.raises(ServiceFileError, match=message):
        make_app(hooks_dir=str(d))


# ---- af-anticoagulation -------------------------------------------------------------------------------

def af_body(*orders, female=False, age=70, conditions=(), meds=(), labs=(), sbp=None):
    ctx = {"userId": "Practitioner/example", "patientId": "p1", "draftOrders": bundle(*orders, type_="collection")}
    prefetch = {
        "patient": {"resourceType": "Patient", "id": "p1", "gender": "female" if female else "male", "birthDate": birth_for(age)},
        "conditions": bundle(condition("af", ICD10, "I48.0"), *conditions),
        "medications": bundle(*meds),
        "bp": bundle(*([obs("sbp", "8480-6", sbp, "mm[Hg]")] if sbp is not None else [])),
        "labs": bundle(*labs),
        "procedures": bundle(),
    }
    return {"hook": "order-sign", "hookInstance": "0c4e2a1b-8d3f-4e5a-9b6c-7d8e9f0a1b2c", "context": ctx, "prefetch": prefetch}


def af_cards(module_client, body) -> tuple[dict, list[dict]]:
    """The scores card (CHA2DS2-VASc and HAS-BLED) and the others (co-medication, DOAC with a valve)."""
    cards = post(module_client, "af-anticoagulation", body)
    scores = [c for c in cards if "CHA2DS2-VASc" in c["summary"]]
    assert len(scores) == 1
    return scores[0], [c for c in cards if c is not scores[0]]


def test_af_high_bleeding_risk_warns_lists_modifiable_factors_and_offers_to_drop_the_nsaid(module_client):
    inr = [obs(f"inr{i}", "6301-6", v, "{INR}", at=f"@ago:{100 - 14 * i}d") for i, v in enumerate([1.5, 3.8, 1.7, 2.4, 4.1, 1.6])]
    body = af_body(draft("w1", "warfarin sodium 5 MG Oral Tablet", mg=5, per_day=1),
                   draft("n1", "ibuprofen 600 MG Oral Tablet", mg=600, per_day=3),
                   female=True, age=76, conditions=[condition("htn", SNOMED, "38341003"), condition("gi", ICD10, "K92.2", "resolved")],
                   sbp=172, labs=[obs("cr", "14682-9", 110, "umol/L"), *inr])
    card, (combination,) = af_cards(module_client, body)
    assert card["indicator"] == "warning"
    preds = predictions(card)
    # CHA2DS2-VASc: age ≥ 75 (2) + hypertension (1) + female (1) = 4
    assert preds["cha2ds2-vasc"]["score"] == 4 and preds["cha2ds2-vasc"]["contributions"]["age"] == 2
    hb = preds["has-bled"]
    # H (172 > 160) + B (GI bleed) + L (TTR < 60 %) + E (76 > 65) + D (ibuprofen ordered now) = 5; liver not assessed
    assert hb["score"] == 5 and hb["not_assessed"] == ["abnormal_liver"]
    assert {k for k, v in hb["contributions"].items() if v} == {"uncontrolled_hypertension", "bleeding", "labile_inr", "elderly", "drugs"}
    assert "HAS-BLED ≥5" in card["summary"] and "CHA2DS2-VASc 4" in card["summary"]
    assert "Modifiable bleeding risk factors present" in card["detail"] and "labile INR" in card["detail"]
    assert "suggestions" not in card  # the NSAID's removal is on the co-medication card (at any HAS-BLED score)
    assert combination["indicator"] == "warning" and combination["selectionBehavior"] == "any"
    assert actions(combination) == [{"type": "delete", "description": actions(combination)[0]["description"], "resourceId": "MedicationRequest/n1"}]
    assert card["extension"][EXT]["features"]["inr_ttr"]["value"] < 60


@pytest.mark.parametrize("female, age, expect_low", [(False, 50, True), (True, 50, True), (False, 65, False), (True, 65, False)])
def test_af_low_cha2ds2vasc_is_an_info_card(module_client, female, age, expect_low):
    (card,) = post(module_client, "af-anticoagulation", af_body(draft("a1", "apixaban 5 MG Oral Tablet", mg=5, per_day=2), female=female, age=age))
    assert card["indicator"] == "info"
    assert ("low stroke risk" in card["summary"]) is expect_low
    if expect_low:
        assert actions(card)[0]["resourceId"] == "MedicationRequest/a1"


def test_af_scores_from_conditions_labs_and_active_antiplatelet(module_client):
    body = af_body(draft("e1", "edoxaban 60 MG Oral Tablet", mg=60, per_day=1), age=70,
                   conditions=[condition("chf", ICD10, "I50.22"), condition("dm", ICD10, "E11.9"), condition("mi", SNOMED, "22298006", "resolved"),
                               condition("tia", ICD10, "G45.9", "resolved"), condition("dial", ICD10, "Z99.2")],
                   meds=[draft("asa", "aspirin 81 MG Oral Tablet", status="active")], sbp=150,
                   labs=[obs("bili", "1975-2", 3.0, "mg/dL"), obs("alt", "1742-6", 130, "U/L")])
    card, (combination,) = af_cards(module_client, body)
    preds = predictions(card)
    # CHA2DS2-VASc: C1 + D1 + V1 (resolved MI still counts) + S2 (TIA) + A 65-74 (1) = 6
    assert preds["cha2ds2-vasc"]["score"] == 6
    hb = preds["has-bled"]
    # A renal (dialysis) + A liver (bilirubin 2.5× and ALT 3.25× ULN) + E + D (active aspirin) = 4 (SBP 150: no H)
    assert {k for k, v in hb["contributions"].items() if v} == {"abnormal_renal", "abnormal_liver", "elderly", "drugs"}
    assert card["indicator"] == "warning" and "suggestions" not in card
    assert combination["indicator"] == "warning" and "suggestions" not in combination  # aspirin is active, not a draft to delete


def test_af_service_is_silent_without_af_or_anticoagulant(module_client):
    body = af_body(draft("a1", "apixaban 5 MG Oral Tablet", mg=5, per_day=2))
    body["prefetch"]["conditions"] = bundle(condition("dvt", ICD10, "I82.401"))
    assert post(module_client, "af-anticoagulation", body) == []
    assert post(module_client, "af-anticoagulation", af_body(draft("x1", "amoxicillin 500 MG Oral Capsule", mg=500, per_day=3))) == []


def test_af_anticoagulant_matched_by_ingredient_code_or_name(module_client):
    by_code = af_body(draft("w1", "Coumadin", code="11289"))
    by_name = af_body(draft("w1", "Warfarin Sodium 2 MG Oral Tablet"))
    assert len(post(module_client, "af-anticoagulation", by_code)) == len(post(module_client, "af-anticoagulation", by_name)) == 1


def test_every_order_service_is_discoverable(module_client):
    services = {(s["id"], s["hook"]) for s in module_client.get("/cds-services").get_json()["services"]}
    assert {("renal-dosing-select", "order-select"), ("renal-dosing", "order-sign"), ("af-anticoagulation", "order-sign")} <= services


def test_card2_value_shown_never_contradicts_its_rule(module_client):
    """eGFR 44.96 would print as '45' on a card for eGFR 30-44: more decimals are shown instead."""
    cards = renal(module_client, draft("m1", "metformin 500 MG Oral Tablet", mg=500, per_day=2), creatinine=creatinine_for_egfr(44.96, 70, False))
    (card,) = cards
    assert "eGFR 44.96 (30-44)" in card["summary"] and "eGFR **44.96 mL/min/1.73 m²**" in card["detail"]


def test_unavailable_conditions_leave_af_rules_unapplied_and_say_so(module_client):
    """PREFETCH-3 `omit`: without the conditions AF is unknown; 'any' rules still apply, AF-only doses are named as unchecked."""
    body = renal_body(draft("d1", "dabigatran etexilate 150 MG Oral Capsule", mg=150, per_day=2),
                      draft("e1", "edoxaban 60 MG Oral Tablet", mg=60, per_day=1), age=68, creatinine=2.0, weight=40.0)  # CrCl 20
    body["prefetch"]["conditions"] = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
    cards = post(module_client, "renal-dosing", body)
    edoxaban = next(c for c in cards if c["summary"].startswith("Edoxaban"))  # 15-50 → 30 mg for any indication
    assert actions(edoxaban)[0]["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 30
    unknown = next(c for c in cards if c["summary"].startswith("Dose check incomplete"))
    assert "dabigatran" in unknown["summary"] and "could not be obtained" in unknown["detail"]
    assert "conditions" in unknown["extension"][EXT]["unavailable"] and "suggestions" not in unknown


def test_act1_suggested_resources_are_valid_fhir_r4(module_client):
    """Every create/update resource the order services suggest parses as a FHIR R4 resource (R4B models)."""
    from fhir.resources.R4B import get_fhir_model_class

    bodies = [("renal-dosing-select", fixture("order-select-rivaroxaban.json")), ("renal-dosing", fixture("order-sign-session.json")),
              ("renal-dosing", renal_body(draft("m1", "metformin 500 MG Oral Tablet", mg=500, per_day=2), cr_at="@ago:200d"))]
    checked = 0
    for service, body in bodies:
        for card in post(module_client, service, body):
            for a in actions(card):
                if a["type"] in ("create", "update"):
                    get_fhir_model_class(a["resource"]["resourceType"]).model_validate(a["resource"])
                    checked += 1
    assert checked >= 3
