"""Synthetic patients from carebundle (PyPI, Apache-2.0), regenerated at test time from a fixed seed.

carebundle writes US Core 6.1.0 transaction Bundles (labs, vitals with the 85354-9 BP panel,
ICD-10-CM Conditions, RxNorm MedicationRequests), byte-identical for a seed. It records no smoking
status, which the ASCVD equations need, so `add_smoking_status` adds one US Core smoking-status
Observation (LOINC 72166-2) per patient, its answer drawn from a generator seeded with the same
seed: real SNOMED CT codes, nothing else changed.
"""
from __future__ import annotations

import json
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import requests

SEED = 42
COUNT = 24  # "a few dozen": every search is a linear scan in the test server
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
# US Core smoking status answers (SNOMED CT), with a rough adult mix.
SMOKING_ANSWERS = (("449868002", "Smokes tobacco daily", 0.15), ("8517006", "Ex-smoker", 0.25),
                   ("266919005", "Never smoked tobacco", 0.60))


@dataclass(frozen=True)
class LoadedPatient:
    patient_id: str
    practitioner_id: str | None
    encounter_id: str | None


def generate(out_dir: Path, *, count: int = COUNT, seed: int = SEED) -> list[Path]:
    """Run the carebundle command line into `out_dir`; return the bundle files, sorted."""
    cmd = [sys.executable, "-m", "carebundle.cli", "generate", "--profile", "mixed", "--count", str(count),
           "--seed", str(seed), "--sex", "mixed", "--age-range", "30-85", "--out", str(out_dir)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return sorted(Path(out_dir).glob("mixed-*.json"))


def add_smoking_status(bundle: dict, rng: random.Random) -> dict:
    """Append a final 72166-2 Observation for the bundle's patient, dated like its encounter."""
    entries = bundle["entry"]
    patient = next(e for e in entries if e["resource"]["resourceType"] == "Patient")
    dated = [e["resource"].get("effectiveDateTime") for e in entries if e["resource"].get("effectiveDateTime")]
    code, display = _draw(rng)
    obs = {"resourceType": "Observation", "status": "final",
           "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                     "code": "social-history"}]}],
           "code": {"coding": [{"system": LOINC, "code": "72166-2", "display": "Tobacco smoking status"}]},
           "subject": {"reference": patient["fullUrl"]}, "effectiveDateTime": max(dated),
           "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display}}
    entries.append({"fullUrl": f"urn:uuid:{_uuid(rng)}", "resource": obs, "request": {"method": "POST", "url": "Observation"}})
    return bundle


def load(fhir_base: str, files: list[Path], *, seed: int = SEED) -> list[LoadedPatient]:
    """POST each bundle as a transaction; return the server-assigned ids per patient."""
    rng = random.Random(seed)
    out = []
    for path in files:
        bundle = add_smoking_status(json.loads(path.read_text()), rng)
        resp = requests.post(f"{fhir_base}/", json=bundle, headers={"Content-Type": "application/fhir+json"}, timeout=60)
        resp.raise_for_status()
        ids: dict[str, str] = {}
        for entry in resp.json().get("entry", []):
            location = (entry.get("response") or {}).get("location", "")
            rtype, _, rid = location.partition("/")
            ids.setdefault(rtype, rid.split("/")[0])
        out.append(LoadedPatient(ids["Patient"], ids.get("Practitioner"), ids.get("Encounter")))
    return out


def _draw(rng: random.Random) -> tuple[str, str]:
    x, acc = rng.random(), 0.0
    for code, display, p in SMOKING_ANSWERS:
        acc += p
        if x < acc:
            return code, display
    return SMOKING_ANSWERS[-1][:2]


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"
