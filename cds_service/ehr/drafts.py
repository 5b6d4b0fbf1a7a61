"""The draft orders an EHR's order entry offers: the simulator's picker and `cds-service fire --draft-order`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"


@dataclass(frozen=True)
class DraftOrder:
    """A medication on offer. Codes are RxNorm ingredient RxCUIs (shared/clinical/data-and-models.md);
    the dose is written out as EHRs send it."""

    key: str
    ingredient: str
    rxcui: str
    dose_mg: float
    per_day: int
    label: str

    @property
    def id(self) -> str:
        """The MedicationRequest's id, which order-select's `selections` point to (HOOK-OSEL-4)."""
        return f"draft-{self.key}"

    @property
    def sig(self) -> str:
        times = {1: "once daily", 2: "twice daily", 3: "three times daily"}[self.per_day]
        return f"{self.ingredient} {self.dose_mg:g} mg by mouth {times}"

    def resource(self, patient_id: str, user: str, encounter_id: str | None, authored: str) -> dict:
        r: dict[str, Any] = {
            "resourceType": "MedicationRequest", "id": self.id, "status": "draft", "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": self.rxcui, "display": self.ingredient}],
                                          "text": f"{self.ingredient} {self.dose_mg:g} mg oral tablet"},
            "subject": {"reference": f"Patient/{patient_id}"}, "authoredOn": authored,
            "requester": {"reference": user},
            "dosageInstruction": [{
                "text": self.sig,
                "timing": {"repeat": {"frequency": self.per_day, "period": 1, "periodUnit": "d"}},
                "route": {"text": "oral"},
                "doseAndRate": [{"doseQuantity": {"value": self.dose_mg, "unit": "mg", "system": UCUM, "code": "mg"}}],
            }],
        }
        if encounter_id:
            r["encounter"] = {"reference": f"Encounter/{encounter_id}"}
        return r


DRAFT_ORDERS: tuple[DraftOrder, ...] = (
    DraftOrder("metformin", "metformin", "6809", 500, 2, "metformin 500 mg twice daily"),
    DraftOrder("apixaban", "apixaban", "1364430", 5, 2, "apixaban 5 mg twice daily"),
    DraftOrder("rivaroxaban", "rivaroxaban", "1114195", 20, 1, "rivaroxaban 20 mg once daily"),
    DraftOrder("dabigatran", "dabigatran", "1037042", 150, 2, "dabigatran 150 mg twice daily"),
    DraftOrder("warfarin", "warfarin", "11289", 5, 1, "warfarin 5 mg once daily"),
    DraftOrder("ibuprofen", "ibuprofen", "5640", 400, 3, "ibuprofen 400 mg three times daily"),
    DraftOrder("naproxen", "naproxen", "7258", 500, 2, "naproxen 500 mg twice daily"),
    DraftOrder("aspirin", "aspirin", "1191", 81, 1, "aspirin 81 mg once daily"),
    DraftOrder("clopidogrel", "clopidogrel", "32968", 75, 1, "clopidogrel 75 mg once daily"),
    DraftOrder("atorvastatin", "atorvastatin", "83367", 40, 1, "atorvastatin 40 mg once daily"),
    DraftOrder("lisinopril", "lisinopril", "29046", 10, 1, "lisinopril 10 mg once daily"),
)
DRAFTS_BY_KEY = {d.key: d for d in DRAFT_ORDERS}
# What an order hook drafts when the caller names none (`cds-service fire order-sign`, `check`): an NSAID,
# which every order service here checks (renal-dosing and renal-dosing-select, and af-anticoagulation's bleeding risk).
DEFAULT_DRAFT = DRAFTS_BY_KEY["ibuprofen"]
