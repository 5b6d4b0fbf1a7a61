"""Patients as the EHR knows them: `Patient` (an id, the user at the keyboard, and the resources the
EHR answers prefetch from), Bundles made server-like (`localize`), and the bundled demo patients.

The demo patients (cds_service/demo/patients, made by scripts/make_demo_patients.py) are dated around
a fixed reference visit. Each time a patient is read, every time in it is shifted so that the latest
clinical time of the whole set (`anchor` in index.json) is half an hour ago: the vital signs of
"today's" visit stay inside a 24-hour window, lookback windows ("a lipid panel in the last 5 years")
keep matching however old the release is, and ages do not change (dates without a time move by whole days).
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from cds_service.ehr.errors import EhrInputError

PATIENTS_DIR = Path(__file__).resolve().parent.parent / "demo" / "patients"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")
LEAD = timedelta(minutes=30)  # how long ago the latest clinical time is placed
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # FHIR R4 id datatype
DEFAULT_USER = "Practitioner/example"  # the clinician when the data names none

# What the patient list shows: LOINC code → (short label, unit shown).
KEY_LABS = (
    ("2093-3", "Total chol.", "mg/dL"),
    ("2085-9", "HDL", "mg/dL"),
    ("8480-6", "SBP", "mm Hg"),
    ("98979-8", "eGFR", "mL/min/1.73m²"),
    ("2160-0", "Creatinine", "mg/dL"),
    ("4548-4", "HbA1c", "%"),
    ("39156-5", "BMI", "kg/m²"),
)


@dataclass(frozen=True)
class Patient:
    """Whose chart is open, who is at the keyboard, and where the data is: `resources` the EHR answers
    prefetch from, or None when the service is to fetch from `fhirServer` itself."""

    id: str
    resources: list[dict] | None = None
    user: str = DEFAULT_USER  # context.userId: a Practitioner, PractitionerRole, Patient or RelatedPerson reference


def patient_from_resources(resources: list[dict], *, source: str = "the bundle") -> Patient:
    """The Patient in `resources`; the user is the first Practitioner (or PractitionerRole) among them."""
    patient = next((r for r in resources if r.get("resourceType") == "Patient"), None)
    if patient is None:
        raise EhrInputError(f"{source} holds no Patient resource")
    practitioner = next((r for r in resources if r.get("resourceType") in ("Practitioner", "PractitionerRole")), None)
    user = f"{practitioner['resourceType']}/{practitioner['id']}" if practitioner else DEFAULT_USER
    return Patient(patient["id"], resources, user)


def localize(document: dict) -> list[dict]:
    """The resources of a Bundle (or one resource) as a FHIR server stores them: with ids, and
    `urn:uuid:` references (transaction Bundles from carebundle or Synthea) rewritten to `Type/id`."""
    if document.get("resourceType") != "Bundle":
        return [copy.deepcopy(document)]
    resources, full_urls = [], {}
    for i, entry in enumerate(document.get("entry") or []):
        r = copy.deepcopy(entry.get("resource") or {})
        if not r.get("resourceType"):
            continue
        if not r.get("id"):
            tail = str(entry.get("fullUrl") or "").rsplit(":", 1)[-1].rsplit("/", 1)[-1]
            r["id"] = tail if FHIR_ID.match(tail) else f"{r['resourceType'].lower()}-{i}"
        if entry.get("fullUrl"):
            full_urls[entry["fullUrl"]] = f"{r['resourceType']}/{r['id']}"
        resources.append(r)
    stack: list[Any] = list(resources)
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("reference") in full_urls:
                node["reference"] = full_urls[node["reference"]]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return resources


@dataclass(frozen=True)
class PatientSummary:
    id: str
    name: str
    gender: str
    age: int | None
    birth_date: str | None
    labs: tuple[tuple[str, str, str], ...]  # (label, value, date)
    smoking: str | None
    conditions: tuple[tuple[str, str], ...]  # (display, code)
    medications: tuple[str, ...]
    encounters: tuple[tuple[str, str, str], ...]  # (id, class, status)
    scenario: str


class DemoPatients:
    """Loaded once per app; `resources(id)` returns a private, time-shifted copy the caller may change."""

    def __init__(self, directory: Path = PATIENTS_DIR, clock: Callable[[], datetime] | None = None):
        index = json.loads((directory / "index.json").read_text(encoding="utf-8"))
        self.anchor = datetime.fromisoformat(index["anchor"].replace("Z", "+00:00"))
        self.generator = f"{index['generator']}, seed {index['seed']}"
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._raw: dict[str, list[dict]] = {}
        self._scenario: dict[str, str] = {}
        for item in index["patients"]:
            bundle = json.loads((directory / item["file"]).read_text(encoding="utf-8"))
            self._raw[item["id"]] = [e["resource"] for e in bundle["entry"]]
            self._scenario[item["id"]] = item.get("scenario", "")

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self._raw)

    def __contains__(self, pid: str) -> bool:
        return pid in self._raw

    def shift(self) -> timedelta:
        return (self._clock() - LEAD) - self.anchor

    def resources(self, pid: str) -> list[dict]:
        return _shift_dates(copy.deepcopy(self._raw[pid]), self.shift())

    def patient(self, pid: str) -> Patient:
        return patient_from_resources(self.resources(pid), source=pid)

    @property
    def summaries(self) -> tuple["PatientSummary", ...]:
        today = self._clock().date()
        return tuple(summarize(self.resources(pid), self._scenario[pid], today) for pid in self._raw)

    def summary(self, pid: str) -> "PatientSummary":
        return summarize(self.resources(pid), self._scenario[pid], self._clock().date())


def _shift_dates(value: Any, shift: timedelta) -> Any:
    """Move every date-time by `shift` and every date by its whole days (so ages stay the same)."""
    if isinstance(value, dict):
        return {k: _shift_dates(v, shift) for k, v in value.items()}
    if isinstance(value, list):
        return [_shift_dates(v, shift) for v in value]
    if isinstance(value, str):
        if _DATETIME.match(value):
            moved = datetime.fromisoformat(value.replace("Z", "+00:00")) + shift
            text = moved.astimezone(timezone.utc).isoformat(timespec="seconds")
            return text.replace("+00:00", "Z")
        if _DATE.match(value):
            return (date.fromisoformat(value) + timedelta(days=round(shift / timedelta(days=1)))).isoformat()
    return value


def _code(concept: dict | None) -> tuple[str, str]:
    coding = ((concept or {}).get("coding") or [{}])[0]
    return coding.get("code", ""), (concept or {}).get("text") or coding.get("display", "")


def _fmt(q: dict) -> str:
    v = q.get("value")
    return "" if v is None else (f"{v:g}" if isinstance(v, (int, float)) else str(v))


def summarize(resources: list[dict], scenario: str, today: date) -> PatientSummary:
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    name = patient.get("name", [{}])[0]
    full = " ".join(name.get("given", []) + [name.get("family", "")]).strip()
    age = None
    if patient.get("birthDate"):
        born = date.fromisoformat(patient["birthDate"])
        age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    latest: dict[str, tuple[str, str]] = {}
    smoking = None
    for obs in sorted((r for r in resources if r["resourceType"] == "Observation"),
                      key=lambda r: r.get("effectiveDateTime", "")):
        code, _ = _code(obs.get("code"))
        when = obs.get("effectiveDateTime", "")[:10]
        if "valueQuantity" in obs:
            latest[code] = (_fmt(obs["valueQuantity"]), when)
        for comp in obs.get("component", []):
            if "valueQuantity" in comp:
                latest[_code(comp.get("code"))[0]] = (_fmt(comp["valueQuantity"]), when)
        if code == "72166-2":
            smoking = _code(obs.get("valueCodeableConcept"))[1]
    labs = tuple((label, f"{latest[code][0]} {unit}", latest[code][1]) for code, label, unit in KEY_LABS if code in latest)
    conditions = tuple((_code(c.get("code"))[1], _code(c.get("code"))[0]) for c in resources if c["resourceType"] == "Condition")
    meds = tuple(_code(m.get("medicationCodeableConcept"))[1] for m in resources
                 if m["resourceType"] == "MedicationRequest" and m.get("status") == "active")
    encounters = encounter_list(resources)
    return PatientSummary(patient["id"], full or patient["id"], patient.get("gender", "unknown"), age,
                          patient.get("birthDate"), labs, smoking, conditions, meds, encounters, scenario)


def encounter_list(resources) -> tuple[tuple[str, str, str], ...]:
    """(id, class code, status) of each Encounter on record, as the EHR lists them."""
    return tuple((e["id"], (e.get("class") or {}).get("code", ""), e.get("status", "")) for e in resources or ()
                 if e.get("resourceType") == "Encounter" and e.get("id"))
