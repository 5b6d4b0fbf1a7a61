"""What a population job computes for one patient, and the Arrow schema of its rows. No Spark here.

`Job` is a small picklable description shipped to the executors; `process(job, patient_id, lines,
as_of)` parses that patient's NDJSON lines and returns one row: the scored row of `population score`
(with the outcome label for `population validate`), or the flat training row of `population dataset`
(one column per feature value, then the outcome).
"""
from __future__ import annotations

import functools
import json
import sys
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from typing import Any

import pyarrow as pa

from cds_service.config import Settings
from cds_service.population.outcomes import Outcome, label
from cds_service.population.patient import SUPPORTED_HOOKS, check_supported, score_patient
from cds_service.runtime import build_services

SCORE_COLUMNS = ("patient_id", "service_id", "as_of", "sex", "race", "ethnicity", "age_band", "applicability",
                 "applicability_reasons", "score", "indicator", "summary", "missing", "top_factors", "features", "notes",
                 "model_id", "model_version", "error")
_TEXT_LIST = pa.list_(pa.string())
_FIELDS: dict[str, pa.DataType] = {
    "patient_id": pa.string(), "service_id": pa.string(), "as_of": pa.timestamp("us", tz="UTC"),
    "sex": pa.string(), "race": pa.string(), "ethnicity": pa.string(), "age_band": pa.string(),
    "applicability": pa.string(), "applicability_reasons": _TEXT_LIST, "score": pa.float64(),
    "indicator": pa.string(), "summary": pa.string(), "missing": _TEXT_LIST,
    "top_factors": pa.list_(pa.struct([("name", pa.string()), ("label", pa.string()), ("value", pa.string()),
                                       ("contribution", pa.float64())])),
    "features": pa.list_(pa.struct([("name", pa.string()), ("label", pa.string()), ("value", pa.float64()),
                                    ("unit", pa.string()), ("date", pa.string()), ("sources", _TEXT_LIST),
                                    ("note", pa.string()), ("imputed", pa.bool_()), ("invalid", pa.bool_())])),
    "notes": _TEXT_LIST, "model_id": pa.string(), "model_version": pa.string(), "error": pa.string(),
    "outcome": pa.int8(), "outcome_date": pa.string(), "outcome_note": pa.string(), "rejected": _TEXT_LIST,
}
OUTCOME_COLUMNS = ("outcome", "outcome_date", "outcome_note")
# The flat training table: identification and subgroups, whether the service applies, the features whose
# recorded value the service rejected (implausible, unit not convertible: read as missing), then one float
# column per feature, then the outcome. `models.datasets.load_dataset` reads it for `cds-service train --data`.
DATASET_COLUMNS = ("patient_id", "as_of", "sex", "race", "ethnicity", "age_band", "applicability", "error", "rejected")


@dataclass(frozen=True)
class Job:
    service_id: str
    hooks_dir: str
    model_dir: str
    outcome: Outcome | None = None
    flat: bool = False  # `population dataset`: one column per feature value


def parse_index_date(text: str) -> datetime:
    """An index date or date-time. A bare date means the end of that day (UTC): the whole day is known."""
    text = text.strip()
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), time(23, 59, 59), tzinfo=timezone.utc)
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


@functools.lru_cache(maxsize=4)
def load_bound(hooks_dir: str, model_dir: str, service_id: str):
    """The service bound to its model, loaded once per (executor) process as the service loads it."""
    services = build_services(Settings.from_mapping({"hooks_dir": hooks_dir, "model_dir": model_dir}))
    group = services.get(service_id)
    if not group:
        raise KeyError(f"no service '{service_id}' in {hooks_dir} (known: {', '.join(sorted(services))})")
    bound = next((b for b in group if b.definition.hook in SUPPORTED_HOOKS), group[0])
    check_supported(bound)
    if "torch" in sys.modules:  # one thread per task: Spark already runs one task per core
        sys.modules["torch"].set_num_threads(1)
    return bound


def schema(job: Job) -> pa.Schema:
    if job.flat:
        bound = load_bound(job.hooks_dir, job.model_dir, job.service_id)
        names = [f.name for f in bound.definition.features]
        clash = set(names) & (set(DATASET_COLUMNS) | set(OUTCOME_COLUMNS))
        if clash:
            raise ValueError(f"feature name(s) {', '.join(sorted(clash))} clash with the table's own columns")
        fields = [(c, _FIELDS[c]) for c in DATASET_COLUMNS] + [(n, pa.float64()) for n in names]
        return pa.schema(fields + [(c, _FIELDS[c]) for c in OUTCOME_COLUMNS])
    columns = SCORE_COLUMNS + (OUTCOME_COLUMNS if job.outcome else ())
    return pa.schema([(c, _FIELDS[c]) for c in columns])


def process(job: Job, patient_id: str, lines: list[str], as_of: datetime) -> dict[str, Any]:
    """One patient's row. A line that is not a JSON object is skipped (and counted in `notes`)."""
    resources, bad = [], 0
    for line in lines:
        try:
            r = json.loads(line)
        except ValueError:
            r = None
        if isinstance(r, dict):
            resources.append(r)
        elif line.strip():
            bad += 1
    bound = load_bound(job.hooks_dir, job.model_dir, job.service_id)
    row = score_patient(bound, patient_id, resources, as_of)
    if bad:
        row["notes"].append(f"{bad} line(s) of the export were not JSON objects and were skipped")
    if job.outcome is not None:
        lab = label(job.outcome, resources, as_of)
        row.update(outcome=lab.event, outcome_date=lab.date, outcome_note=lab.reason)
    if job.flat:
        values = {f["name"]: f["value"] for f in row["features"]}
        row["rejected"] = [f["name"] for f in row["features"] if f["invalid"]]
        row = {**{c: row.get(c) for c in DATASET_COLUMNS}, **values, **{c: row.get(c) for c in OUTCOME_COLUMNS}}
    return row


def to_table(rows: list[dict], arrow_schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist([{c: r.get(c) for c in arrow_schema.names} for r in rows], schema=arrow_schema)
