"""The simulator answers prefetch templates from a patient's resources as an EHR would (PREFETCH-2, PREFETCH-6)."""
from __future__ import annotations

import pytest

from cds_service.ehr.fhir_query import UnsupportedQuery, evaluate

PATIENT = {"resourceType": "Patient", "id": "p1"}
OTHER = {"resourceType": "Patient", "id": "p2"}


def obs(oid, code, when, patient="p1", status="final"):
    return {"resourceType": "Observation", "id": oid, "status": status, "subject": {"reference": f"Patient/{patient}"},
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]}, "effectiveDateTime": when}


RESOURCES = [
    PATIENT, OTHER,
    obs("tc-old", "2093-3", "2024-01-01T09:00:00Z"), obs("tc-new", "2093-3", "2026-01-01T09:00:00Z"),
    obs("hdl", "2085-9", "2025-06-01T09:00:00Z"), obs("other-tc", "2093-3", "2026-01-01", patient="p2"),
    obs("draft", "2093-3", "2026-02-01", status="preliminary"),
    {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
     "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "resolved"}]},
     "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I21.4"}]}},
    {"resourceType": "MedicationRequest", "id": "m1", "status": "active", "subject": {"reference": "Patient/p1"},
     "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "83367"}]}},
    {"resourceType": "MedicationRequest", "id": "m2", "status": "stopped", "subject": {"reference": "Patient/p1"},
     "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "6809"}]}},
]


def ids(bundle):
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    entries = bundle.get("entry", [])
    assert "entry" not in bundle or entries, "FHIR JSON has no empty arrays"
    assert bundle["total"] == len(entries)
    return [e["resource"]["id"] for e in entries]


def test_read_returns_the_resource_or_null():
    """A read gives the resource; one that finds nothing is null (PREFETCH-6: known to have no data)."""
    assert evaluate("Patient/p1", RESOURCES) is PATIENT
    assert evaluate("Patient/nobody", RESOURCES) is None


def test_search_by_patient_and_code_list_sorted_newest_first():
    q = "Observation?patient=p1&code=http://loinc.org|2093-3,http://loinc.org|2085-9&_sort=-date"
    assert ids(evaluate(q, RESOURCES)) == ["draft", "tc-new", "hdl", "tc-old"]
    assert ids(evaluate("Observation?subject=Patient/p2&code=2093-3", RESOURCES)) == ["other-tc"]


def test_count_status_and_date_filters():
    assert ids(evaluate("Observation?patient=p1&code=http://loinc.org|2093-3&status=final&_sort=-date&_count=1", RESOURCES)) == ["tc-new"]
    assert ids(evaluate("Observation?patient=p1&date=ge2025-01-01&date=lt2026-01-01", RESOURCES)) == ["hdl"]
    assert ids(evaluate("MedicationRequest?patient=p1&status=active", RESOURCES)) == ["m1"]
    assert ids(evaluate("Condition?patient=p1&clinical-status=active", RESOURCES)) == []
    assert ids(evaluate("Condition?patient=p1&code=http://hl7.org/fhir/sid/icd-10-cm|I21.4", RESOURCES)) == ["c1"]


def test_unknown_parameters_are_refused_not_ignored():
    """A filter the simulator does not know would widen the result: refuse, so the key is left out."""
    with pytest.raises(UnsupportedQuery):
        evaluate("Observation?patient=p1&code:below=http://loinc.org|2093", RESOURCES)
    with pytest.raises(UnsupportedQuery):
        evaluate("Observation?patient=p1&_sort=value-quantity", RESOURCES)
