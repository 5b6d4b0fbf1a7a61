"""The bundled training tables written as FHIR Bulk Data exports (training–serving parity).

`cds-service population from-dataset whas500-1y-mortality --output DIR` turns each row of the canonical
training table (`models/datasets.py`, the `train` extra) into the FHIR resources the service file reads,
coded as in the service file and dated at one index date, plus `outcome.toml` and `index_dates.csv`.
`population dataset` over that export then rebuilds the table through the service's own feature
extraction, and `cds-service train <model> --data TABLE` trains the shipped artifact on it: training
and serving share one feature code path. The tests check that every value and label comes back
unchanged (but for values the service rejects), and that the shipped artifact is what this path trains.
"""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from models.datasets import SPECS

INDEX = datetime(2026, 1, 1, 9, 0, tzinfo=timezone.utc)  # when every converted patient is seen
LOINC, UCUM, ICD10 = "http://loinc.org", "http://unitsofmeasure.org", "http://hl7.org/fhir/sid/icd-10-cm"


def fhir_id(row_id: str) -> str:
    """`whas500:7` → `whas500-000007`: a FHIR id whose order is the table's row order, so the table that
    `population dataset` rebuilds (sorted by patient id for training) has the rows in their original order
    and trains on the same cross-validation folds."""
    stem, sep, number = row_id.lower().rpartition(":")
    if sep and number.isdigit():
        row_id = f"{stem}:{int(number):06d}"
    return row_id.lower().replace(":", "-").replace(".", "-")


def _born(age_years: float, on: date) -> str:
    """A birth date that makes the patient exactly `age_years` (whole years) old on `on`."""
    anniversary = date(on.year - int(age_years), on.month, on.day)
    return (anniversary - timedelta(days=180)).isoformat()


def _observation(pid: str, key: str, code: str, display: str, value: float, unit: str, when: datetime) -> dict:
    return {"resourceType": "Observation", "id": f"{pid}-{key}", "status": "final",
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}


# Death within a year, written by the converter as the day after discharge: the canonical WHAS500 table
# keeps the 1-year label (death within 365 days of admission), not the day of death.
WHAS500_OUTCOME = """# Death within 1 year of the WHAS500 admission, written by `population from-dataset whas500-1y-mortality`
# as Patient.deceasedDateTime the day after discharge (the canonical table keeps the label, not the day).
id = "whas500-death-1y"
title = "Death within 1 year of the myocardial infarction admission (WHAS500)"
window_days = 365
death = true
"""


def _condition(pid: str, key: str, code: str, display: str, onset: datetime) -> dict:
    return {"resourceType": "Condition", "id": f"{pid}-{key}", "subject": {"reference": f"Patient/{pid}"},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "code": {"coding": [{"system": ICD10, "code": code, "display": display}]},
            "onsetDateTime": onset.strftime("%Y-%m-%dT%H:%M:%SZ")}


def whas500_resources(row: dict, index: datetime = INDEX) -> list[dict]:
    """One WHAS500 row as an acute-MI stay discharged at `index`: admission `los_days` earlier, the first
    vital signs and BMI at admission, heart failure and atrial fibrillation as active problems."""
    pid = fhir_id(row["row_id"])
    admitted = index - timedelta(days=int(row["los_days"]))
    patient: dict[str, Any] = {"resourceType": "Patient", "id": pid, "gender": "female" if row["female"] else "male",
               "birthDate": _born(row["age"], index.date())}
    if row["outcome"]:
        patient["deceasedDateTime"] = (index + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    stay: dict[str, Any] = {"resourceType": "Encounter", "id": f"{pid}-stay", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP", "display": "inpatient encounter"},
            "subject": {"reference": f"Patient/{pid}"},
            "period": {"start": admitted.strftime("%Y-%m-%dT%H:%M:%SZ"), "end": index.strftime("%Y-%m-%dT%H:%M:%SZ")},
            "reasonCode": [{"coding": [{"system": ICD10, "code": "I21.9", "display": "Acute myocardial infarction, unspecified"}]}]}
    out = [patient, stay,
           _observation(pid, "hr", "8867-4", "Heart rate", row["heart_rate"], "/min", admitted),
           _observation(pid, "sbp", "8480-6", "Systolic blood pressure", row["sbp"], "mm[Hg]", admitted),
           _observation(pid, "dbp", "8462-4", "Diastolic blood pressure", row["dbp"], "mm[Hg]", admitted),
           _observation(pid, "bmi", "39156-5", "Body mass index (BMI) [Ratio]", row["bmi"], "kg/m2", admitted)]
    for s in (stay, *out[2:]):
        if s["resourceType"] == "Observation":
            s["encounter"] = {"reference": f"Encounter/{stay['id']}"}
    if row["chf"]:
        out.append(_condition(pid, "chf", "I50.9", "Heart failure, unspecified", admitted))
    if row["afib"]:
        out.append(_condition(pid, "afib", "I48.91", "Unspecified atrial fibrillation", admitted))
    return out


# model id → (row converter, outcome definition). The service whose feature code reads the export is the
# training spec's `service`. MONICA has no service (its model card says why), so it has no export.
EXPORTS: dict[str, tuple[Callable[[dict], list[dict]], str]] = {
    "whas500-1y-mortality": (whas500_resources, WHAS500_OUTCOME),
}


def served_by(model_id: str) -> str:
    service = SPECS[model_id].service
    if service is None:
        raise ValueError(f"'{model_id}' has no service: nothing reads its data as FHIR")
    return service


def records(model_id: str) -> Iterator[tuple[dict, list[dict]]]:
    """(canonical table row, its resources) for every row of the model's training table (loading it
    needs the `train` extra: pandas and the package that ships the data)."""
    convert, _ = EXPORTS[model_id]
    for row in SPECS[model_id].load().to_dict("records"):
        yield row, convert(row)


def write(model_id: str, out: str | Path) -> dict[str, int]:
    """`<Type>.ndjson`, `outcome.toml` and `index_dates.csv` under `out`; returns resources per type."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines: dict[str, list[str]] = {}
    dates = ["patient_id,index_date"]
    for _, resources in records(model_id):
        for r in resources:
            lines.setdefault(r["resourceType"], []).append(json.dumps(r, separators=(",", ":")))
        dates.append(f"{resources[0]['id']},{INDEX.strftime('%Y-%m-%dT%H:%M:%SZ')}")
    for rtype, rows in lines.items():
        (out / f"{rtype}.ndjson").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (out / "outcome.toml").write_text(EXPORTS[model_id][1], encoding="utf-8")
    (out / "index_dates.csv").write_text("\n".join(dates) + "\n", encoding="utf-8")
    return {k: len(v) for k, v in lines.items()}
