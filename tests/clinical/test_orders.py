"""Orders as a real EHR sends them (finding 12), through the order services' HTTP API and the order reader.

- UCUM (the Unified Code for Units of Measure, §4.2.3 annotations): a unit written only as an annotation in
  curly braces — `{pill}`, `{tbl}`, `{tablet}`, `{capsule}`, `{cap}` — is the unity "1" with a label: one unit of
  the product. The dose in mg is then units × the product's strength.
- RxNorm (NLM): clinical (SCD) and branded (SBD) drug names carry ingredient, strength and dose form
  ("rivaroxaban 10 MG Oral Tablet", "… [Xarelto]"); product codes map to them.
- FHIR R4 Medication.ingredient.strength: a Ratio of amount per unit of the product.
- The labels the doses are checked against: Xarelto US label 2.2 (AF, CrCl > 50: 20 mg once daily with the
  evening meal), FDA metformin safety communication (2016) with KDIGO 2022 (≤ 1000 mg/day at eGFR 30–44).
"""
from __future__ import annotations

import pytest

from cds_testing.fhir_factory import SNOMED
from cds_testing.order_helpers import RXNORM, actions, birth_for, bundle, creatinine_for_egfr, draft, fixture, obs, post
from fhir_adapters.orders import Dose, medication_orders, ordered_dose


def order(mid, concept, dosage=None, **extra):
    r = {"resourceType": "MedicationRequest", "id": mid, "status": "draft", "intent": "order",
         "subject": {"reference": "Patient/p1"}, **extra}
    if concept is not None:
        r["medicationCodeableConcept"] = concept
    if dosage is not None:
        r["dosageInstruction"] = [dosage]
    return r


def rx(code, name=None):
    coding = {"system": RXNORM, "code": code}
    if name:
        coding["display"] = name
    return {"coding": [coding], **({"text": name} if name else {})}


def pills(n, code="{pill}", per_day=1):
    return {"timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [{"doseQuantity": {"value": n, "system": "http://unitsofmeasure.org", "code": code}}]}


def read(resource) -> Dose:
    return ordered_dose(medication_orders({"draftOrders": bundle(resource)})[0])


def renal(*orders, age=68, creatinine=1.0, weight=78.0, meds=()):
    ctx = {"userId": "Practitioner/example", "patientId": "p1", "draftOrders": bundle(*orders)}
    prefetch = {
        "patient": {"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": birth_for(age)},
        "creatinine": bundle(obs("cr", "2160-0", creatinine, "mg/dL")),
        "weight": bundle(obs("wt", "29463-7", weight, "kg")),
        "conditions": bundle({"resourceType": "Condition", "id": "af", "subject": {"reference": "Patient/p1"},
                              "code": {"coding": [{"system": SNOMED, "code": "49436004"}]}}),
        "medications": bundle(*meds),
        "procedures": bundle(),
    }
    return {"hook": "order-sign", "hookInstance": "4c2b9e7a-1f3d-4a5b-8c6d-9e0f1a2b3c4d", "context": ctx, "prefetch": prefetch}


# ---- the CDS Hooks Sandbox's own Rx Sign request ------------------------------------------------------------

def test_sandbox_rx_sign_pill_order_gets_the_under_dose_card(module_client):
    """Finding 12. The Sandbox's Rx Sign order (`{pill}` × 1 daily, product RxNorm 1114198 "rivaroxaban 10 MG Oral
    Tablet") for a man in AF at CrCl 78: Xarelto US label 2.2 gives 20 mg once daily above CrCl 50, so the 10 mg
    order gets the under-dose card, with the ordered dose read as 10 mg once daily."""
    (card,) = post(module_client, "renal-dosing", fixture("sandbox-rx-sign-rivaroxaban.json"))
    assert "20 mg once daily" in card["summary"] and "ordered: 10 mg once daily" in card["summary"]
    (action,) = actions(card)
    assert action["type"] == "update" and action["resource"]["id"] == "request-123"
    dose = action["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
    assert dose["value"] == 20 and dose["code"] == "mg"


def test_sandbox_order_is_also_read_by_af_anticoagulation(module_client):
    """The same Sandbox shape at af-anticoagulation (2023 ACC/AHA/ACCP/HRS AF guideline 6.3.1): the product-level code
    with `{pill}` is recognised as an anticoagulant and scored; no prefetch for `bp`/`labs` — the Sandbox leaves out
    keys it could not fetch, so those are unavailable and HAS-BLED items resting on them are not assessed."""
    body = fixture("sandbox-rx-sign-rivaroxaban.json")
    body["prefetch"] = {k: v for k, v in body["prefetch"].items() if k in ("patient", "conditions", "medications", "procedures")}
    cards = post(module_client, "af-anticoagulation", body)
    assert any("CHA2DS2-VASc" in c["summary"] for c in cards)


# ---- UCUM annotation units are one unit of the product ---------------------------------------------------------

@pytest.mark.parametrize("unit", ["{pill}", "{tbl}", "{tablet}", "{Tablet}", "{capsule}", "{cap}", "{puff}", "1", "TAB", "tablet"])
def test_annotation_and_count_units_are_one_unit_of_the_product(unit):
    """UCUM §4.2.3: an annotation alone ({pill}) is the unity 1 with a label; the dose is units × product strength."""
    assert read(order("x", rx("1114198", "rivaroxaban 10 MG Oral Tablet"), pills(2, unit))) == Dose(20, 1)


@pytest.mark.parametrize("concept, mg", [
    (rx("1114198"), 10),                                                  # SCD code alone, no display: from the table
    (rx("1232086"), 20),
    (rx("1364435"), 2.5),                                                 # apixaban 2.5 MG Oral Tablet
    (rx("1037179"), 75),                                                  # dabigatran etexilate 75 MG Oral Capsule
    (rx("861007"), 500),                                                  # metformin hydrochloride 500 MG Oral Tablet
    (rx("860975"), 500),                                                  # 24 HR metformin … 500 MG Extended Release
    ({"text": "rivaroxaban 15 MG Oral Tablet [Xarelto]"}, 15),             # SBD name
    ({"coding": [{"system": RXNORM, "code": "999999999", "display": "edoxaban 30 MG Oral Tablet"}]}, 30),  # unknown code, named
])
def test_product_strength_from_code_or_name(concept, mg):
    """RxNorm SCD/SBD names carry ingredient and strength; a product code the table knows gives them without a name."""
    assert read(order("x", concept, pills(1, "{tbl}"))) == Dose(mg, 1)


def test_every_product_row_parses_to_one_ingredient_and_strength():
    """RxNorm names are built from ingredient, strength and dose form: every row of the product table parses, to an
    ingredient the services know, and the same name read as an order's text gives the same strength."""
    from fhir_adapters.rxnorm_products import PRODUCTS, product
    known = ("dabigatran", "rivaroxaban", "apixaban", "edoxaban", "warfarin", "metformin", "ibuprofen", "atorvastatin")
    for code, name in PRODUCTS.items():
        p = product(code)
        assert p is not None and p.mg > 0 and p.form.endswith(("Tablet", "Capsule")), name
        assert p.ingredient.split()[0] in known, name
        assert read(order("x", {"text": name}, pills(1, "{tbl}"))) == Dose(p.mg, 1), name


def test_strength_from_a_medication_ingredient():
    """FHIR R4 Medication.ingredient.strength (numerator mg per denominator 1 unit) gives the strength when the
    product text has none."""
    med = {"resourceType": "Medication", "id": "m", "code": {"text": "Xarelto"},
           "ingredient": [{"itemCodeableConcept": {"text": "rivaroxaban"}, "strength": {
               "numerator": {"value": 15, "system": "http://unitsofmeasure.org", "code": "mg"},
               "denominator": {"value": 1, "system": "http://unitsofmeasure.org", "code": "{tbl}"}}}]}
    r = order("x", None, pills(1, "{tbl}"), contained=[med], medicationReference={"reference": "#m"})
    assert read(r) == Dose(15, 1)


def test_a_product_code_alone_matches_its_ingredient(module_client):
    """RxNorm SCD 1114198 with no display or text still names rivaroxaban (through the product table): the AF dose
    rule applies (Xarelto US label 2.2)."""
    cards = post(module_client, "renal-dosing", renal(order("r1", rx("1114198"), pills(1))))
    (card,) = cards
    assert card["summary"].startswith("Rivaroxaban") and "ordered: 10 mg once daily" in card["summary"]


def test_metformin_pills_are_read_as_a_daily_total(module_client):
    """FDA 2016 / KDIGO 2022: a patient already taking metformin at eGFR 30–44 should take at most 1000 mg a day. Two
    {pill} of metformin 861007 twice daily is 2000 mg a day → reduce; the card shows the dose it read."""
    taking = draft("old", "metformin hydrochloride 500 MG Oral Tablet", status="active")
    body = renal(order("m1", rx("861007", "metformin hydrochloride 500 MG Oral Tablet"), pills(2, per_day=2)),
                 age=70, creatinine=creatinine_for_egfr(40, 70, False), meds=[taking])
    (card,) = post(module_client, "renal-dosing", body)
    assert "ordered: 1000 mg twice daily" in card["summary"] and actions(card)[0]["type"] == "update"


def test_code_and_name_disagreeing_on_strength_is_not_guessed(module_client):
    """RxNorm 1114198 is rivaroxaban 10 MG Oral Tablet; an order displaying it as 20 MG is inconsistent: the
    strength is not guessed, the card says the dose could not be read (Xarelto US label 2.2 for the label dose)."""
    r = order("r1", rx("1114198", "rivaroxaban 20 MG Oral Tablet"), pills(1))
    (card,) = post(module_client, "renal-dosing", renal(r))
    assert "could not be read" in card["detail"] and "strength" in card["detail"] and not actions(card)


def test_an_order_for_another_patient_is_not_judged(module_client):
    """CDS Hooks order-sign: `draftOrders` are the orders for the patient in context. An order whose subject is
    another patient is not judged against this patient's renal function (it would be advice about the wrong person)."""
    r = order("m1", rx("861007", "metformin hydrochloride 500 MG Oral Tablet"), pills(1), subject={"reference": "Patient/someone-else"})
    assert post(module_client, "renal-dosing", renal(r, age=70, creatinine=creatinine_for_egfr(20, 70, False))) == []
    r["subject"] = {"reference": "https://fhir.example.org/Patient/p1"}  # the same patient, absolute reference: judged
    assert len(post(module_client, "renal-dosing", renal(r, age=70, creatinine=creatinine_for_egfr(20, 70, False)))) == 1


# ---- a dose that cannot be read is said, never skipped -----------------------------------------------------------

@pytest.mark.parametrize("dosage, reason", [
    ({"text": "as directed"}, "no dose"),
    (pills(1, "mL"), "mL"),
    ({"doseAndRate": [{"doseQuantity": {"value": 1, "code": "{pill}"}}]}, "how often"),
    ({"timing": {"repeat": {"frequency": "twice", "period": 1, "periodUnit": "d"}}, "text": "10 mg twice daily"}, "how often"),
])
def test_unreadable_dose_is_said_on_the_card(module_client, dosage, reason):
    """Finding 12. Xarelto US label 2.2: in AF above CrCl 50 the dose is 20 mg once daily. When the ordered dose
    cannot be read the card says so, with the reason, and asks to check it against the label — no silent skip and
    no one-click change built on a dose that was not understood."""
    cards = post(module_client, "renal-dosing", renal(order("r1", rx("1114198", "rivaroxaban 10 MG Oral Tablet"), dosage)))
    (card,) = cards
    assert "could not be read" in card["detail"] and reason in card["detail"]
    assert "check it against the label" in card["detail"]
    assert not actions(card)


def test_unknown_strength_is_a_reason(module_client):
    """A `{tbl}` dose of a product whose strength is nowhere (no strength in the name, no Medication ingredient,
    an unknown code) cannot be converted to mg: the card names that reason."""
    r = order("r1", {"coding": [{"system": "http://ehr.example.org/drug-catalog", "code": "RIVA", "display": "rivaroxaban tablet"}]},
              pills(1, "{tbl}"))
    (card,) = post(module_client, "renal-dosing", renal(r))
    assert "could not be read" in card["detail"] and "strength" in card["detail"]
