"""`population dataset`: the training table of a service's features over an export, and what built it.

The table is the flat job's parquet (`jobs.Job(flat=True)`); beside its part files goes
`_provenance.json` (`models.datasets.PROVENANCE_FILE`; readers of the table skip `_` files): the
service and the sha256 of its data definitions (`hooks.loader.data_definitions_sha256`), the sha256
of the export's NDJSON files, of the outcome definition and of the index dates. `cds-service train
--data` copies it into the artifact's `training_data.json` and model card. Only content hashes and
names are recorded, never a path or a time, so the same export gives the same provenance anywhere.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

from cds_service.population import spark as sp
from cds_service.population.jobs import Job, load_bound
from hooks.loader import data_definitions_sha256
from models.datasets import PROVENANCE_FILE

# The files Spark reads (`spark.NDJSON_GLOB`, recursively).
_NDJSON_SUFFIXES = (".ndjson", ".ndjson.gz")


def build(spark, job: Job, input_dir: str, output: str, *, outcome_file: str, as_of: datetime | None = None,
          index_dates: str | None = None, overwrite: bool = False) -> dict:
    """Run the flat job over `input_dir`, write the parquet at `output` and its provenance; returns the provenance."""
    if not job.flat or job.outcome is None:
        raise ValueError("a training table needs the flat job with an outcome")
    sp.write(sp.run(spark, job, input_dir, as_of=as_of, index_dates=index_dates), output, overwrite=overwrite)
    provenance = describe(job, input_dir, outcome_file, as_of=as_of, index_dates=index_dates)
    out = Path(output)
    if out.is_dir():  # a cluster's object store (s3a://, abfss://) gets the table only
        (out / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return provenance


def describe(job: Job, input_dir: str, outcome_file: str, *, as_of: datetime | None, index_dates: str | None) -> dict:
    if job.outcome is None:
        raise ValueError("a training table's provenance names its outcome")
    service = load_bound(job.hooks_dir, job.model_dir, job.service_id).definition
    index = {"index_dates_sha256": _sha256_file(index_dates)} if index_dates else {"as_of": as_of.isoformat() if as_of else None}
    return {
        "format": 1,
        "built_by": "cds-service population dataset",
        "service": {"id": service.id, "hook": service.hook, "file": Path(service.path).name,
                    "data_definitions_sha256": data_definitions_sha256(service.path)},
        "export": export_digest(input_dir),
        "outcome": {"id": job.outcome.id, "sha256": _sha256_file(outcome_file)},
        "index": index,
    }


def export_digest(input_dir: str) -> dict:
    """sha256 over the export's NDJSON files (each file's path relative to `input_dir` and the sha256 of its
    bytes, in path order). A directory that is not local (a cluster's object store) is named, not hashed."""
    root = Path(input_dir)
    if not root.is_dir():
        return {"ndjson_files": None, "sha256": None, "note": "not a local directory: not hashed"}
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(_NDJSON_SUFFIXES))
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(root).as_posix()}\0{_sha256_file(path)}\n".encode("utf-8"))
    return {"ndjson_files": len(files), "sha256": digest.hexdigest()}


def _sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
