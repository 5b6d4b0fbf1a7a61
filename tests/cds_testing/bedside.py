"""FHIR R4 requests for the bedside and applicability scenarios (tests/clinical/): an adult patient, the
hook's encounter, one set of NEWS2 observations, an encounter-start and an order-sign request.

Plain resources, dates relative to now (`@ago:1h`), nothing the services do not read. The NEWS2 parameters
of one observation set share one effective time, as a bedside chart records them (RCP NEWS2 2017, chart 3).
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from cds_testing.order_helpers import bundle, obs, when

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
BASE = "https://ehr.example.org/fhir/R4"
HOOK_INSTANCE = "7e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"


def birth_for(years: float, now: datetime | None = None) -> str:
    """A birth date that makes the patient `years` old today (whole years: the day after a birthday)."""
    now = now or datetime.now(timezone.utc)
    whole = int(years)
    born = date(now.year - whole, now.month, now.day) if not (now.month == 2 and now.day == 29) else date(now.year - whole, 2, 28)
    return (born - timedelta(days=1)).isoformat()


def patient(age: float | None = 60, gender: str = "female", pid: str = "p1") -> dict:
    p = {"resourceType": "Patient", "id": pid, "gender": gender}
    if age is not None:
        p["birthDate"] = birth_for(age)
    return p


def encounter(cls: str = "IMP", status: str = "in-progress", eid: str = "enc-1", pid: str = "p1") -> dict:
    displays = {"IMP": "inpatient encounter", "EMER": "emergency", "AMB": "ambulatory", "ACUTE": "inpatient acute",
                "OBSENC": "observation encounter", "VR": "virtual", "HH": "home health"}
    return {"resourceType": "Encounter", "id": eid, "status": status,
            "class": {"system": ACT, "code": cls, "display": displays.get(cls, cls)},
            "subject": {"reference": f"Patient/{pid}"}, "period": {"start": when("@ago:2h")}}


def coded(oid: str, code: str, text: str, at: str = "@ago:1h", system: str = LOINC, answer: tuple[str, str] | None = None) -> dict:
    value = {"text": text}
    if answer:
        value["coding"] = [{"system": answer[0], "code": answer[1], "display": text}]
    return {"resourceType": "Observation", "id": oid, "status": "final", "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": system, "code": code}]}, "effectiveDateTime": when(at) if at.startswith("@") else at,
            "valueCodeableConcept": value}


def vital_set(rr=16, spo2=97, sbp=120, pulse=70, temp=37.0, acvpu="Alert", gcs=None, o2=None, at="@ago:1h",
              prefix: str = "", **times) -> list[dict]:
    """One set of NEWS2 observations taken together; None leaves a parameter out, `<name>_at` moves one."""
    out = []
    spec = [("rr", "9279-1", rr, "/min"), ("spo2", "59408-5", spo2, "%"), ("sbp", "8480-6", sbp, "mm[Hg]"),
            ("pulse", "8867-4", pulse, "/min"), ("temp", "8310-5", temp, "Cel"), ("gcs", "9269-2", gcs, "{score}"),
            ("o2", "3151-8", o2, "L/min")]
    for name, code, value, unit in spec:
        if value is not None:
            out.append(obs(f"{prefix}{name}", code, value, unit, at=times.get(f"{name}_at", at)))
    if acvpu is not None:
        out.append(coded(f"{prefix}acvpu", "67775-7", acvpu, at=times.get("acvpu_at", at)))
    return out


def condition(cid: str, system: str, code: str, status: str = "active", onset: str = "2020-01-01") -> dict:
    return {"resourceType": "Condition", "id": cid, "subject": {"reference": "Patient/p1"},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": status}]},
            "code": {"coding": [{"system": system, "code": code}]}, "onsetDateTime": onset}


def news_body(*observations, patient_=None, encounter_=None, conditions=(), goals=None, episodes=(), omit=(),
              context=None) -> dict:
    """An encounter-start request for deterioration-scores; `observations` may be lists (sets) or resources.
    `omit` leaves prefetch keys out (the service then fetches them or says they are unavailable)."""
    flat = [o for item in observations for o in (item if isinstance(item, list) else [item])]
    prefetch = {"patient": patient_ if patient_ is not None else patient(),
                "encounter": encounter_ if encounter_ is not None else encounter(),
                "vitals": bundle(*flat), "conditions": bundle(*conditions), "goals": goals, "episodes": bundle(*episodes)}
    for key in omit:
        prefetch.pop(key)
    ctx = {"userId": "Practitioner/example", "patientId": "p1", "encounterId": "enc-1", **(context or {})}
    return {"hook": "encounter-start", "hookInstance": HOOK_INSTANCE, "context": ctx, "prefetch": prefetch}


def renal_body(*orders, age=70, female=False, creatinine=1.0, cr_unit="mg/dL", weight=80.0) -> dict:
    """An order-sign request for renal-dosing (the shape of tests/test_order_services.py's)."""
    ctx = {"userId": "Practitioner/example", "patientId": "p1", "draftOrders": bundle(*orders, type_="collection")}
    prefetch = {
        "patient": {"resourceType": "Patient", "id": "p1", "gender": "female" if female else "male", "birthDate": birth_for(age)},
        "creatinine": bundle(*([obs("cr", "2160-0" if cr_unit == "mg/dL" else "14682-9", creatinine, cr_unit, at="@ago:5d")]
                               if creatinine is not None else [])),
        "weight": bundle(*([obs("wt", "29463-7", weight, "kg")] if weight is not None else [])),
        "conditions": bundle(), "medications": bundle(),
    }
    return {"hook": "order-sign", "hookInstance": "5b7d0c1e-4f0a-4c8e-9a77-1d2e3f4a5b6c", "context": ctx, "prefetch": prefetch}


def fhir_server_body(body: dict, *keys: str) -> dict:
    """The request without the prefetch `keys`, pointing at the test FHIR server `BASE` (no token)."""
    out = dict(body, fhirServer=BASE, prefetch={k: v for k, v in body["prefetch"].items() if k not in keys})
    return out


def discharge_body(age: float = 70, *, omit=(), with_vitals: bool = True) -> dict:
    """An encounter-discharge request for post-mi-mortality: an inpatient stay of 4 days for an acute STEMI
    (SNOMED 401303003 as the encounter's reason) with the stay's first heart rate and blood pressure and a BMI."""
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=4)
    at = lambda minutes: (start + timedelta(minutes=minutes)).isoformat()  # noqa: E731
    stay = {"resourceType": "Encounter", "id": "e1", "status": "in-progress", "subject": {"reference": "Patient/p1"},
            "class": {"system": ACT, "code": "IMP"}, "period": {"start": start.isoformat()},
            "reasonCode": [{"coding": [{"system": SNOMED, "code": "401303003"}]}]}
    vitals = [obs("hr", "8867-4", 96, "/min", at=at(10)), obs("sbp", "8480-6", 128, "mm[Hg]", at=at(12)),
              obs("dbp", "8462-4", 78, "mm[Hg]", at=at(12)), obs("bmi", "39156-5", 27.0, "kg/m2", at=at(1440))]
    prefetch = {"patient": patient(age, "male"), "encounter": stay, "vitals": bundle(*(vitals if with_vitals else [])),
                "conditions": bundle(), "ecg": bundle()}
    for key in omit:
        prefetch.pop(key)
    return {"hook": "encounter-discharge", "hookInstance": "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f",
            "context": {"userId": "Practitioner/example", "patientId": "p1", "encounterId": "e1"}, "prefetch": prefetch}
