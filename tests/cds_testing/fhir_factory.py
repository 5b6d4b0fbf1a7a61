"""Tiny builders for FHIR R4 test resources (plain dicts, as EHRs send them)."""
from __future__ import annotations

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def patient(pid="p1", gender="female", birth_date="1970-03-01", race=None):
    p = {"resourceType": "Patient", "id": pid, "gender": gender, "birthDate": birth_date}
    if race:
        p["extension"] = [{"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race", "extension": [
            {"url": "ombCategory", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": race}},
            {"url": "text", "valueString": "race"}]}]
    return p


def quantity_obs(oid, code, value, unit, date="2026-06-01", pid="p1", status="final"):
    return {"resourceType": "Observation", "id": oid, "status": status, "subject": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": LOINC, "code": code}]}, "effectiveDateTime": date,
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}


def bp_panel(oid, systolic, diastolic, date="2026-06-01", pid="p1"):
    comp = lambda code, v: {"code": {"coding": [{"system": LOINC, "code": code}]},  # noqa: E731
                            "valueQuantity": {"value": v, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}
    return {"resourceType": "Observation", "id": oid, "status": "final", "subject": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": LOINC, "code": "85354-9"}]}, "effectiveDateTime": date,
            "component": [comp("8480-6", systolic), comp("8462-4", diastolic)]}


def coded_obs(oid, code, answer, date="2026-06-01", pid="p1"):
    return {"resourceType": "Observation", "id": oid, "status": "final", "subject": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": LOINC, "code": code}]}, "effectiveDateTime": date,
            "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": answer}]}}


def condition(cid, system, code, status="active", pid="p1", onset="2020-01-01"):
    return {"resourceType": "Condition", "id": cid, "subject": {"reference": f"Patient/{pid}"},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": status}]},
            "code": {"coding": [{"system": system, "code": code}]}, "onsetDateTime": onset}


def med_request(mid, rxcui, display, status="active", pid="p1"):
    return {"resourceType": "MedicationRequest", "id": mid, "status": status, "intent": "order",
            "subject": {"reference": f"Patient/{pid}"},
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": rxcui, "display": display}], "text": display}}


def bundle(*resources):
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"resource": r} for r in resources]}


def ascvd_prefetch(*, pid="p1", gender="female", birth_date="1970-03-01", race=None, tc=213, hdl=50, sbp=120,
                   smoker=False, conditions=(), meds=(), tc_unit="mg/dL", ldl=130, ldl_code="13457-7"):
    """A complete prefetch for ascvd-10y-risk (a lipid panel with a calculated LDL-C); pass None for a value to
    leave it out. The optional keys (enhancer laboratory results, family history) are left to the caller."""
    lipids = [r for r in (quantity_obs("tc", "2093-3", tc, tc_unit, pid=pid) if tc is not None else None,
                          quantity_obs("hdl", "2085-9", hdl, tc_unit, pid=pid) if hdl is not None else None,
                          quantity_obs("ldl", ldl_code, ldl, "mg/dL", pid=pid) if ldl is not None else None) if r]
    return {
        "patient": patient(pid, gender, birth_date, race),
        "lipids": bundle(*lipids),
        "bp": bundle(*([bp_panel("bp", sbp, 80, pid=pid)] if sbp is not None else [])),
        "smoking": bundle(coded_obs("smk", "72166-2", "449868002" if smoker else "266919005", pid=pid)),
        "conditions": bundle(*conditions),
        "medications": bundle(*meds),
    }


def hook_request(hook="patient-view", prefetch=None, pid="p1", **context):
    ctx = {"userId": "Practitioner/example", "patientId": pid}
    ctx.update(context)
    body = {"hook": hook, "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", "context": ctx}
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


CPT = "http://www.ama-assn.org/go/cpt"


def procedure(pid_, system, code, performed, *, status="completed", pid="p1"):
    """A Procedure (e.g. a cardioversion, CPT 92960) performed at `performed` (a FHIR dateTime)."""
    return {"resourceType": "Procedure", "id": pid_, "status": status, "subject": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": system, "code": code}]}, "performedDateTime": performed}
