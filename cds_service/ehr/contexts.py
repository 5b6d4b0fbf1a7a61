"""The context an EHR sends with each of the six hooks (Hook Library 1.0.1; the required fields and
allowed users are those of `hooks.catalog`, which the service checks on every request)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from cds_service.ehr.drafts import DEFAULT_DRAFT, DraftOrder
from cds_service.ehr.errors import EhrInputError
from cds_service.ehr.patients import DEFAULT_USER, Patient
from hooks.catalog import HOOKS

# HOOK-ES-3 / HOOK-ED-3 require an encounterId; a patient with no Encounter on record (or known only
# by id, its data on the FHIR server) gets this one.
PLACEHOLDER_ENCOUNTER = "encounter-1"
# appointment-book proposes a routine follow-up two weeks ahead, at 09:00 UTC, for 20 minutes. Two
# weeks leaves time for tests ordered at booking (what care-gaps offers) to be back for the visit; 20
# minutes is a usual follow-up slot. The simulator's button says "in 14 days" (ui/simulator_views.py).
APPOINTMENT_LEAD = timedelta(days=14)
APPOINTMENT_LENGTH = timedelta(minutes=20)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def build_context(hook: str, patient: Patient, *, now: datetime, drafts: Sequence[DraftOrder | dict] = (),
                  selected: Sequence[str] = (), encounter_id: str | None = None) -> dict:
    """The context of `hook` for `patient` at `now`.

    `drafts` (order-select, order-sign) are presets, made out for this patient, user and encounter, or
    request resources used as given; without any, DEFAULT_DRAFT. `selected` names the ids of the drafts
    order-select has just selected; without a match, the last draft. `encounter_id` chooses the encounter;
    without it, the one the hook is about (`encounter_for`).
    """
    spec = HOOKS.get(hook)
    if spec is None:
        raise EhrInputError(f"unknown hook '{hook}' (known: {', '.join(HOOKS)})")
    # HOOK-OSEL-1, HOOK-OSIGN-1, HOOK-ES-1, HOOK-ED-1: a clinician; patient-view and appointment-book allow any user.
    user = patient.user if patient.user.split("/")[0] in spec.user_types else DEFAULT_USER
    encounter_id = encounter_id or encounter_for(patient, hook)
    if encounter_id is None and "encounterId" in spec.required:
        encounter_id = PLACEHOLDER_ENCOUNTER
    context: dict[str, Any] = {"userId": user, "patientId": patient.id}
    if encounter_id:
        context["encounterId"] = encounter_id
    if "draftOrders" in spec.required:
        authored = now.date().isoformat()
        orders = [d.resource(patient.id, user, encounter_id, authored) if isinstance(d, DraftOrder) else d
                  for d in (drafts or [DEFAULT_DRAFT])]
        context["draftOrders"] = _collection(orders)
        if "selections" in spec.required:  # HOOK-OSEL-4: the newly selected orders, pointing into draftOrders
            chosen = [o for o in orders if o.get("id") in selected] or orders[-1:]
            context["selections"] = [f"{o['resourceType']}/{o['id']}" for o in chosen]
    if "appointments" in spec.required:
        # HOOK-AB-4: a Bundle of proposed Appointments (not the bare array of the 1.0.1 examples).
        context["appointments"] = _collection([_follow_up(patient.id, user, now)])
    return context


def encounter_for(patient: Patient, hook: str) -> str | None:
    """The encounter the hook is about: for discharge the inpatient stay, otherwise an encounter in
    progress; among equals the latest."""
    encounters = [r for r in patient.resources or () if r.get("resourceType") == "Encounter" and r.get("id")]
    if not encounters:
        return None

    def rank(e: dict) -> tuple:
        wanted = (e.get("class") or {}).get("code") == "IMP" if hook == "encounter-discharge" else e.get("status") == "in-progress"
        return wanted, (e.get("period") or {}).get("start", "")

    return max(encounters, key=rank)["id"]


def _follow_up(patient_id: str, user: str, now: datetime) -> dict:
    start = (now.astimezone(timezone.utc) + APPOINTMENT_LEAD).replace(hour=9, minute=0, second=0, microsecond=0)
    participants = [{"actor": {"reference": f"Patient/{patient_id}"}, "required": "required", "status": "needs-action"}]
    if user != f"Patient/{patient_id}":
        participants.append({"actor": {"reference": user}, "status": "accepted"})
    return {
        "resourceType": "Appointment", "id": "proposed-follow-up", "status": "proposed",
        "serviceType": [{"text": "Follow-up visit"}], "description": "Follow-up visit in primary care",
        "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "end": (start + APPOINTMENT_LENGTH).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "participant": participants,
    }


def _collection(resources: list[dict]) -> dict:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
