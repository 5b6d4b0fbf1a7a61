"""The bundled training tables written as FHIR Bulk Data exports (issue #16 item 5, training–serving parity).

`cds-service population from-dataset pima-diabetes --output DIR` turns each row of the canonical
training table (`models/datasets.py`, the `train` extra) into the FHIR resources the service file reads,
coded as in the service file and dated at one index date, plus `outcome.toml` and `index_dates.csv`.
`population dataset` over that export then rebuilds the table through the service's own feature
extraction: the tests check that every value and label comes back unchanged, and that the service's
score of each patient equals the artifact's score of the tabular row.
"""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator

INDEX = datetime(2026, 1, 1, 9, 0, tzinfo=timezone.utc)  # when every converted patient is seen
LOINC, UCUM, ICD10 = "http://loinc.org", "http://unitsofmeasure.org", "http://hl7.org/fhir/sid/icd-10-cm"
# The outcome is diabetes by WHO criteria at the examination: written as a diagnosis the day after the
# index date, so that it is a label and never a feature (the features see the record as of the index date).
PIMA_OUTCOME = """# Diabetes by WHO criteria at the Pima examination, written by `population from-dataset pima-diabetes`
# as a Condition dated the day after the index date.
id = "pima-diabetes-who"
title = "Diabetes by WHO criteria (Pima examination)"
window_days = 1
codes = ["http://hl7.org/fhir/sid/icd-10-cm|E11.*"]
"""


def _fhir_id(row_id: str) -> str:
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


def pima_resources(row: dict, index: datetime = INDEX) -> list[dict]:
    """One Pima row (service units: mg/dL, kg/m2, years, mm[Hg], count) as the resources `diabetes-risk` reads."""
    pid = _fhir_id(row["row_id"])
    out = [{"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": _born(row["age"], index.date())},
           _observation(pid, "glucose", "1518-0", "Glucose [Mass/volume] in Serum or Plasma --2 hours post 75 g glucose PO",
                        row["glucose_2h"], "mg/dL", index),
           _observation(pid, "bmi", "39156-5", "Body mass index (BMI) [Ratio]", row["bmi"], "kg/m2", index),
           _observation(pid, "dbp", "8462-4", "Diastolic blood pressure", row["diastolic_bp"], "mm[Hg]", index),
           _observation(pid, "pregnancies", "11996-6", "[#] Pregnancies", row["pregnancies"], "{#}", index)]
    if row["outcome"]:
        out.append({"resourceType": "Condition", "id": f"{pid}-diabetes", "subject": {"reference": f"Patient/{pid}"},
                    "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                                   "code": "active"}]},
                    "code": {"coding": [{"system": ICD10, "code": "E11.9", "display": "Type 2 diabetes mellitus without complications"}]},
                    "onsetDateTime": (index + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")})
    return out


# model id → (service that serves it, row converter, outcome definition)
EXPORTS: dict[str, tuple[str, Callable[[dict], list[dict]], str]] = {
    "pima-diabetes": ("diabetes-risk", pima_resources, PIMA_OUTCOME),
}


def records(model_id: str) -> Iterator[tuple[dict, list[dict]]]:
    """(canonical table row, its resources) for every row of the model's training table."""
    from models.datasets import SPECS  # the `train` extra (pandas, the packaged data)

    _, convert, _ = EXPORTS[model_id]
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
    (out / "outcome.toml").write_text(EXPORTS[model_id][2], encoding="utf-8")
    (out / "index_dates.csv").write_text("\n".join(dates) + "\n", encoding="utf-8")
    return {k: len(v) for k, v in lines.items()}
