"""Build the CDS Hooks requests the simulator sends: context per hook, draft orders, and the prefetch.

The prefetch is filled the way an EHR does it: each of the called service's templates is rendered
with the request's context (TOKEN-1..3, the service's own `render_template`) and answered from
the patient's resources (`fhir_query`). A template the simulator cannot answer is left out, so the
service sees an absent key (PREFETCH-1) exactly as it would from an EHR that does not prefetch.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

from cds_service.errors import InvalidRequest
from cds_service.hook_request import HookRequest
from cds_service.prefetch import render_template
from cds_service.ehr.fhir_query import UnsupportedQuery, evaluate

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"


@dataclass(frozen=True)
class DraftOrder:
    """A medication the draft-order picker offers. Codes are RxNorm ingredient RxCUIs
    (shared/clinical/data-and-models.md); the dose is written out as EHRs send it."""

    key: str
    ingredient: str
    rxcui: str
    dose_mg: float
    per_day: int
    label: str

    @property
    def sig(self) -> str:
        times = {1: "once daily", 2: "twice daily", 3: "three times daily"}[self.per_day]
        return f"{self.ingredient} {self.dose_mg:g} mg by mouth {times}"

    def resource(self, patient_id: str, user: str, encounter_id: str | None, authored: str) -> dict:
        r: dict[str, Any] = {
            "resourceType": "MedicationRequest", "id": f"draft-{self.key}", "status": "draft", "intent": "order",
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


@dataclass
class HookCall:
    """One request the browser sends, with the notes the simulator shows next to it."""

    service_id: str
    title: str
    hook: str
    body: dict
    notes: list[str] = field(default_factory=list)


def _encounter_for(resources: list[dict], hook: str) -> str | None:
    encounters = [r for r in resources if r["resourceType"] == "Encounter"]
    if not encounters:
        return None
    # Discharge: the inpatient stay if there is one; start: an encounter in progress, else the latest.
    def rank(e: dict) -> tuple:
        cls = (e.get("class") or {}).get("code")
        wanted = cls == "IMP" if hook == "encounter-discharge" else e.get("status") == "in-progress"
        return (wanted, (e.get("period") or {}).get("start", ""))

    return max(encounters, key=rank)["id"]


def build_context(hook: str, resources: list[dict], drafts: list[str], selected: list[str], now: datetime) -> dict:
    """The hook's context (Hook Library 1.0.1) for this patient, raising InvalidRequest on a bad choice."""
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    practitioner = next((r for r in resources if r["resourceType"] == "Practitioner"), None)
    user = f"Practitioner/{practitioner['id']}" if practitioner else "Practitioner/demo-clinician"
    encounter_id = _encounter_for(resources, hook)
    ctx: dict[str, Any] = {"userId": user, "patientId": patient["id"]}
    if encounter_id:
        ctx["encounterId"] = encounter_id
    if hook in ("order-select", "order-sign"):
        unknown = [k for k in drafts if k not in DRAFTS_BY_KEY]
        if unknown or not drafts:
            raise InvalidRequest("Pick at least one draft order from the list.", expression="drafts")
        authored = now.date().isoformat()
        orders = [DRAFTS_BY_KEY[k].resource(patient["id"], user, encounter_id, authored) for k in drafts]
        ctx["draftOrders"] = {"resourceType": "Bundle", "type": "collection",
                              "entry": [{"resource": o} for o in orders]}
        if hook == "order-select":
            chosen = [k for k in selected if k in drafts] or drafts[-1:]
            ctx["selections"] = [f"MedicationRequest/draft-{k}" for k in chosen]
    elif hook == "appointment-book":
        start = (now + timedelta(days=14)).replace(hour=9, minute=0, second=0, microsecond=0)
        appointment = {
            "resourceType": "Appointment", "id": "proposed-follow-up", "status": "proposed",
            "serviceType": [{"text": "Follow-up visit"}], "description": "Follow-up visit in primary care",
            "start": start.isoformat().replace("+00:00", "Z"),
            "end": (start + timedelta(minutes=20)).isoformat().replace("+00:00", "Z"),
            "participant": [{"actor": {"reference": f"Patient/{patient['id']}"}, "status": "needs-action"},
                            {"actor": {"reference": user}, "status": "accepted"}],
        }
        ctx["appointments"] = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": appointment}]}
    return ctx


def build_call(bound, resources: list[dict], context: dict) -> HookCall:
    """The request for one service: a fresh hookInstance, the context, and the prefetch it declares."""
    service = bound.definition
    body: dict[str, Any] = {"hookInstance": str(uuid.uuid4()), "hook": service.hook, "context": context}
    call = HookCall(service.id, service.title, service.hook, body)
    probe = HookRequest(service.hook, body["hookInstance"], MappingProxyType(context), MappingProxyType({}))
    prefetch: dict[str, Any] = {}
    for key, spec in service.prefetch.items():
        try:
            query = render_template(spec.query, probe)
            prefetch[key] = evaluate(query, resources)
        except (UnsupportedQuery, InvalidRequest) as exc:
            call.notes.append(f"prefetch '{key}' not sent: {exc}")
    if prefetch:
        body["prefetch"] = prefetch
    return call


def now_utc() -> datetime:
    return datetime.now(timezone.utc)
