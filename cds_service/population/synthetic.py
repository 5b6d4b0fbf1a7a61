"""A synthetic Bulk Data export (`$export` NDJSON) of any size, for the README, the tests and bench/.

Patients come from carebundle (PyPI, Apache-2.0; `pip install carebundle`, in the test and bench
extras): a pool of up to `pool` generated patients (five profiles, both sexes, aged 30-85, all seen
on `reference`), then copies of the pool with fresh ids, birth dates moved by up to three years and
every measured value scaled by 0.93-1.07, so that 10⁴ or 10⁵ patients take seconds, not hours.
Added to every patient (carebundle has none of these), each drawn from a generator seeded with `seed`:
- a smoking-status Observation (LOINC 72166-2; the ASCVD equations need it);
- US Core race and ethnicity extensions (OMB categories; the validation report's subgroups);
- outcome events in the year after `reference`: a myocardial infarction Condition (SNOMED 22298006,
  ICD-10-CM I21.9) and, rarely, death (`Patient.deceasedDateTime`), drawn from a made-up risk that
  rises with age, male sex, smoking, systolic pressure and diabetes. They exist so that a validation
  report has something to show; they mean nothing clinically.
Narratives (`text`) are left out, as exports requested with `_elements` do.
"""
from __future__ import annotations

import gzip
import json
import math
import random
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import IO

from cds_service.ehr.patients import localize  # urn:uuid references → Type/id, as a server stores them

PROFILES = ("healthy", "hypertension", "type2_diabetes", "ckd_stage3", "anaemia")
LOINC, SNOMED, ICD10 = "http://loinc.org", "http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10-cm"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
OMB = "urn:oid:2.16.840.1.113883.6.238"
RACES = (("2106-3", "White", 0.60), ("2054-5", "Black or African American", 0.14), ("2028-9", "Asian", 0.07),
         ("1002-5", "American Indian or Alaska Native", 0.02), (None, None, 0.17))  # None: not recorded
ETHNICITIES = (("2186-5", "Not Hispanic or Latino", 0.72), ("2135-2", "Hispanic or Latino", 0.18), (None, None, 0.10))
SMOKING = (("449868002", "Smokes tobacco daily", 0.15), ("8517006", "Ex-smoker", 0.25), ("266919005", "Never smoked tobacco", 0.60))
MI = {"coding": [{"system": SNOMED, "code": "22298006", "display": "Myocardial infarction"},
                 {"system": ICD10, "code": "I21.9", "display": "Acute myocardial infarction, unspecified"}],
      "text": "Myocardial infarction"}


def write_export(out: str | Path, *, patients: int, seed: int = 42, pool: int = 200, reference: date = date(2026, 1, 1),
                 files: int = 1, compress: bool = False) -> dict[str, int]:
    """Write `<Type>.ndjson` (or `<Type>.<k>.ndjson[.gz]` with `files` > 1) under `out`; return resources per type."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    bases = [_generate(i, seed, reference) for i in range(min(pool, patients))]
    handles: dict[tuple[str, int], IO[str]] = {}
    written: dict[str, int] = {}
    try:
        for n in range(patients):
            part = n * files // patients
            for r in _patient(bases[n % len(bases)], n, n >= len(bases), rng, reference):
                rtype = r["resourceType"]
                key = (rtype, part)
                if key not in handles:
                    name = f"{rtype}.ndjson" if files == 1 else f"{rtype}.{part:03d}.ndjson"
                    path = out / (name + ".gz" if compress else name)
                    handles[key] = gzip.open(path, "wt", encoding="utf-8", compresslevel=1) if compress else \
                        path.open("w", encoding="utf-8")
                handles[key].write(json.dumps(r, separators=(",", ":")) + "\n")
                written[rtype] = written.get(rtype, 0) + 1
    finally:
        for h in handles.values():
            h.close()
    return written


def _generate(i: int, seed: int, reference: date) -> list[dict]:
    import carebundle  # lazy: a test and bench dependency, not the service's

    bundle = carebundle.generate_bundle(profile=PROFILES[i % len(PROFILES)], seed=seed, sex="F" if i % 2 else "M",
                                        age_range=(30, 85), reference_date=reference, index=i)
    resources = localize(json.loads(carebundle.to_json(bundle, indent=0)))
    for r in resources:
        r.pop("text", None)
    return resources


def _patient(base: list[dict], n: int, vary: bool, rng: random.Random, reference: date) -> list[dict]:
    """Patient `n`: a copy of `base` with its own ids (and varied values when `vary`), plus the additions."""
    text = json.dumps(base)
    old = next(r["id"] for r in base if r["resourceType"] == "Patient")
    pid = f"pt{n:07d}"
    for r in base:
        text = text.replace(r["id"], pid if r["id"] == old else f"{r['id'][:50]}-{n}")
    resources = json.loads(text)
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    if vary:
        born = date.fromisoformat(patient["birthDate"]) + timedelta(days=rng.randint(-1095, 1095))
        patient["birthDate"] = born.isoformat()
        for r in resources:
            for place in [r] + list(r.get("component") or ()):
                q = place.get("valueQuantity")
                if isinstance(q, dict) and isinstance(q.get("value"), (int, float)):
                    q["value"] = round(q["value"] * rng.uniform(0.93, 1.07), 2)
    at = datetime.combine(reference, time(9, 0), tzinfo=timezone.utc)
    smoking = _draw(rng, SMOKING)
    resources.append(_smoking(pid, n, smoking, at))
    _demographics(patient, rng)
    risk = _made_up_risk(patient, resources, smoking[0] == "449868002", reference)
    if rng.random() < risk:
        onset = at + timedelta(days=rng.randint(1, 365))
        resources.append({"resourceType": "Condition", "id": f"mi-{n}", "subject": {"reference": f"Patient/{pid}"},
                          "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                                         "code": "active"}]},
                          "code": MI, "onsetDateTime": onset.strftime("%Y-%m-%dT%H:%M:%SZ")})
        if rng.random() < 0.2:
            patient["deceasedDateTime"] = (onset + timedelta(days=rng.randint(0, 30))).strftime("%Y-%m-%dT%H:%M:%SZ")
    return resources


def _smoking(pid: str, n: int, answer: tuple, at: datetime) -> dict:
    code, display, _ = answer
    return {"resourceType": "Observation", "id": f"smoking-{n}", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "social-history"}]}],
            "code": {"coding": [{"system": LOINC, "code": "72166-2", "display": "Tobacco smoking status"}]},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display}}


def _demographics(patient: dict, rng: random.Random) -> None:
    ext = [e for e in patient.get("extension") or () if e.get("url") not in (US_CORE + "us-core-race", US_CORE + "us-core-ethnicity")]
    for url, choices in ((US_CORE + "us-core-race", RACES), (US_CORE + "us-core-ethnicity", ETHNICITIES)):
        code, display, _ = _draw(rng, choices)
        if code:
            ext.append({"url": url, "extension": [{"url": "ombCategory", "valueCoding": {"system": OMB, "code": code, "display": display}},
                                                  {"url": "text", "valueString": display}]})
    if ext:
        patient["extension"] = ext


def _made_up_risk(patient: dict, resources: list[dict], smoker: bool, reference: date) -> float:
    born = date.fromisoformat(patient["birthDate"])
    age = (reference - born).days / 365.25
    sbp = next((c["valueQuantity"]["value"] for r in resources for c in r.get("component") or ()
                if any(x.get("code") == "8480-6" for x in (c.get("code") or {}).get("coding", [])) and "valueQuantity" in c), 130)
    diabetes = any(r["resourceType"] == "Condition" and "E11" in json.dumps(r.get("code")) for r in resources)
    logit = -3.6 + 0.06 * (age - 60) + 0.6 * (patient.get("gender") == "male") + 0.8 * smoker + 0.02 * (sbp - 130) + 0.5 * diabetes
    return 1 / (1 + math.exp(-logit))


def _draw(rng: random.Random, choices: tuple) -> tuple:
    x, acc = rng.random(), 0.0
    for choice in choices:
        acc += choice[-1]
        if x < acc:
            return choice
    return choices[-1]
