"""Clinician text carries no developer notes and no raw identifiers: every card the services
produce over the EHR simulator's patients × hooks × services is scanned — summary, detail, suggestion labels and
the descriptions of their actions (CDS Hooks 2.0: `action.description` "MAY be presented to the end-user"). Resource
references, bracketed developer tags, divisions written as constants, snake_case feature names, model ids in code
spans and LOINC long names are provenance or developer wording: they belong in the card's extension
(`org.cdsml.prediction`) and the explanation page, not in what the clinician reads."""
from __future__ import annotations

import re

import pytest

from cds_testing.apps import build_app
from cds_testing.simulator_fire import fire_all

RESOURCE_TYPES = ("Patient", "Encounter", "Condition", "Observation", "MedicationRequest", "MedicationStatement",
                  "Medication", "ServiceRequest", "Procedure", "Appointment", "EpisodeOfCare", "Goal",
                  "AllergyIntolerance", "FamilyMemberHistory", "Practitioner", "DiagnosticReport")
PATTERNS = {
    "resource reference": re.compile(r"\b(?:" + "|".join(RESOURCE_TYPES) + r")/[A-Za-z0-9\-.]{1,64}"),
    "draft id": re.compile(r"\bdraft-[a-z0-9-]+\b"),
    "developer tag": re.compile(r"\[(?:OUR CHOICE|TODO|FIXME|XXX|NOTE|HACK|ASSUMPTION)\b|\bOUR CHOICE\b", re.I),
    "constant division": re.compile(r"÷\s*\d"),
    "snake_case name": re.compile(r"\b[a-z][a-z0-9]*_[a-z0-9_]+\b"),
    "code span": re.compile(r"`[^`]+`"),
    "LOINC long name": re.compile(r"/Hemoglobin\.total|\.total in\b|\[(?:Mass|Moles|Mass Ratio|Ratio|Mass/volume|"
                                  r"Moles/volume|Presence|Units/volume)\]|\b(?:in|-) (?:Serum or Plasma|Blood|Urine)\b"
                                  r"|\bby calculation\b|\bSerum or Plasma\b"),
    "LOINC code in text": re.compile(r"\(LOINC [0-9]+-[0-9]\)"),
}


def texts(card: dict):
    """(where, text) of everything a clinician reads on a card."""
    yield "summary", card.get("summary", "")
    yield "detail", card.get("detail", "")
    for s in card.get("suggestions", ()):
        yield "suggestion label", s.get("label", "")
        for a in s.get("actions", ()):
            yield "action description", a.get("description", "")
    for link in card.get("links", ()):
        yield "link label", link.get("label", "")


def offences(card: dict) -> list[tuple[str, str]]:
    return [(f"{where}: {name}", m.group(0)) for where, text in texts(card) for name, rx in PATTERNS.items()
            for m in rx.finditer(text or "")]


@pytest.mark.parametrize("text, caught", [
    ("Clinical ASCVD on record: Condition/demo-02-nstemi (2026-11-26).", "resource reference"),
    ("| Age | 74 years [Patient/demo-01] |", "resource reference"),
    ("apixaban 5 mg oral tablet (draft-apixaban)", "draft id"),
    ("15 minutes [OUR CHOICE]", "developer tag"),
    ("creatinine (µmol/L ÷ 88.42)", "constant division"),
    ("missing: days_since_hba1c", "snake_case name"),
    ("model `pce-goff-2013` version 2013.1", "code span"),
    ("Order Hemoglobin A1c/Hemoglobin.total in Blood", "LOINC long name"),
    ("Albumin/Creatinine [Mass Ratio] in Urine", "LOINC long name"),
    ("Lipid panel - Serum or Plasma", "LOINC long name"),
    ("hs-CRP (LOINC 30522-7): not recorded", "LOINC code in text"),
])
def test_the_scan_catches_each_kind_of_developer_text(text, caught):
    found = offences({"summary": "", "detail": text})
    assert any(caught in where for where, _ in found), found


def test_the_scan_passes_clinician_wording():
    ok = ("**NEWS2 7** — high clinical risk (RCP 2017, chart 2). RR 24 /min at 14:05; SpO2 93 %. Order HbA1c. "
          "eGFR 44 mL/min/1.73 m² (2026-11-30). Clinical ASCVD (NSTEMI, 2026-11-26). Order urine albumin/creatinine ratio.")
    assert offences({"summary": "NEWS2 7: high clinical risk", "detail": ok,
                     "suggestions": [{"label": "Order lipid panel", "actions": [{"description": "Draft order: lipid panel"}]}]}) == []


@pytest.fixture(scope="module")
def fired(tmp_path_factory):
    app = build_app(tmp_path_factory.mktemp("cds"))  # every bundled service, as the product serves them
    bound = [b for group in app.extensions["cds"].services.values() for b in group]
    return fire_all(app.test_client(), bound, "full")


def test_no_card_over_the_simulator_patients_carries_developer_text_or_raw_ids(fired):
    assert sum(len(f.cards) for f in fired if f.status == 200) > 50  # the scan reads real cards
    found: dict[tuple[str, str], str] = {}
    for f in fired:
        if f.status != 200:
            continue
        for card in f.cards:
            for where, fragment in offences(card):
                found.setdefault((where, fragment), f.where)
    assert not found, "\n".join(f"{w} {frag!r} ({at})" for (w, frag), at in sorted(found.items()))


def test_one_rounding_rule_creatinine_two_decimals_hba1c_one_others_at_most_one():
    from fhir_adapters.units import value_text
    assert value_text(2.08, "creatinine") == "2.08" and value_text(1.0, "creatinine") == "1.00"
    assert value_text(6.0, "hba1c") == "6.0" and value_text(6.45, "hba1c") == "6.5"
    assert value_text(38.64, "temperature") == "38.6" and value_text(120.0, "sbp") == "120" and value_text(1234.5) == "1234"


CREATININE = re.compile(r"creatinine \|? ?(\d+(?:\.\d+)?) mg/dL", re.I)
HBA1C = re.compile(r"\bHbA1c (\d+(?:\.\d+)?) ?%")


def test_cards_round_creatinine_and_hba1c_by_the_rule(fired):
    """Every creatinine in mg/dL on a card has 2 decimals (2.08, not 2.1) and every HbA1c 1 (6.0 %, not 6 %)."""
    seen = {"creatinine": 0, "hba1c": 0}
    for f in fired:
        for card in f.cards if f.status == 200 else ():
            for where, text in texts(card):
                for m in CREATININE.finditer(text):
                    seen["creatinine"] += 1
                    assert len(m.group(1).partition(".")[2]) == 2, (f.where, where, m.group(0))
                for m in HBA1C.finditer(text):
                    seen["hba1c"] += 1
                    assert len(m.group(1).partition(".")[2]) == 1, (f.where, where, m.group(0))
    assert seen["creatinine"] and seen["hba1c"], seen


def test_every_suggested_order_over_the_simulator_patients_is_valid_r4_and_orderable(fired):
    """One click in a real EHR: every `create` is a valid R4 resource; a MedicationRequest names an
    RxNorm clinical drug the product table knows with a structured dose, a ServiceRequest a coded test whose text is
    the clinician name (not the code system's long name)."""
    from fhir.resources.R4B import get_fhir_model_class

    from fhir_adapters.rxnorm_products import RXNORM, product

    kinds = set()
    for f in fired:
        for card in f.cards if f.status == 200 else ():
            for s in card.get("suggestions", ()):
                for a in s["actions"]:
                    if a["type"] != "create":
                        continue
                    r = a["resource"]
                    get_fhir_model_class(r["resourceType"]).model_validate(r)
                    kinds.add(r["resourceType"])
                    if r["resourceType"] == "MedicationRequest":
                        first = r["medicationCodeableConcept"]["coding"][0]
                        assert first["system"] == RXNORM and product(first["code"]) is not None, (f.where, first)
                        dose = r["dosageInstruction"][0]
                        assert dose["doseAndRate"][0]["doseQuantity"]["system"] == "http://unitsofmeasure.org"
                        assert dose["timing"]["repeat"]["frequency"] >= 1 and dose["route"]["coding"]
                    else:
                        concept = r["code"]
                        assert concept["text"] != concept["coding"][0]["display"] or len(concept["text"]) <= 40, concept
                        assert not any(rx.search(concept["text"]) for rx in PATTERNS.values()), concept
    assert kinds == {"MedicationRequest", "ServiceRequest"}, kinds
