"""Outcome definitions (`OUTCOME.toml`) and the label of one patient: did the event happen in the window?

An outcome is a code set and a window after the index date (e.g. a myocardial infarction, or death,
within 365 days). Labels read the patient's whole export; scores read only what was known at the
index date (`as_known_at`), so a later event never leaks into the features it is meant to validate.

```toml
id = "mi-or-death-1y"
title = "Myocardial infarction or death within 1 year"
window_days = 365
codes = ["http://snomed.info/sct|22298006", "http://hl7.org/fhir/sid/icd-10-cm|I21.*"]
resource_types = ["Condition", "Encounter"]   # where the codes are looked for (default: Condition)
death = true                                  # Patient.deceasedDateTime in the window counts too
require_follow_up = false                     # true: no event and no record after the window → excluded
```
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable

from fhir_adapters.features import matches_codes
from fhir_adapters.resources import clinical_time, parse_datetime

# Where each resource type keeps the code an outcome is looked for in, and its time.
_CODE_FIELDS = {"Condition": ("code",), "Procedure": ("code",), "Observation": ("code",),
                "Encounter": ("reasonCode", "type"), "MedicationRequest": ("medicationCodeableConcept",)}
# The feature extractors accept a clinical time up to 5 minutes after the hook's time (clock skew);
# the record "as known at" the index date keeps exactly what they would read.
SKEW = timedelta(minutes=5)


class OutcomeError(ValueError):
    pass


@dataclass(frozen=True)
class Outcome:
    id: str
    title: str
    window_days: int
    codes: tuple[str, ...] = ()
    resource_types: tuple[str, ...] = ("Condition",)
    death: bool = False
    require_follow_up: bool = False


@dataclass(frozen=True)
class Label:
    event: int | None  # 1, 0, or None when the patient cannot be labelled (excluded, see `reason`)
    date: str | None = None
    reason: str | None = None


def load_outcome(path: str | Path) -> Outcome:
    """Parse and check an outcome file; raises `OutcomeError` naming the field."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise OutcomeError(f"{path}: {exc}") from None
    known = {"id", "title", "window_days", "codes", "resource_types", "death", "require_follow_up"}
    if set(raw) - known:
        raise OutcomeError(f"{path}: unknown field(s) {', '.join(sorted(set(raw) - known))}")
    window = raw.get("window_days")
    if not isinstance(window, int) or window <= 0:
        raise OutcomeError(f"{path}: window_days must be a positive number of days")
    codes = tuple(raw.get("codes", ()))
    if any(not isinstance(c, str) or "|" not in c for c in codes):
        raise OutcomeError(f"{path}: codes must be 'system|code' strings")
    types = tuple(raw.get("resource_types", ("Condition",)))
    if set(types) - set(_CODE_FIELDS):
        raise OutcomeError(f"{path}: resource_types: choose from {', '.join(_CODE_FIELDS)}")
    if not codes and not raw.get("death"):
        raise OutcomeError(f"{path}: give codes, death = true, or both")
    return Outcome(str(raw.get("id") or Path(path).stem), str(raw.get("title") or raw.get("id") or Path(path).stem),
                   window, codes, types, bool(raw.get("death", False)), bool(raw.get("require_follow_up", False)))


def label(outcome: Outcome, resources: Iterable[dict], index: datetime) -> Label:
    """1 when the first event falls in (index, index + window], 0 when none does; None when excluded."""
    end = index + timedelta(days=outcome.window_days)
    resources = list(resources)
    times = [t for t in (_event_time(outcome, r) for r in resources) if t is not None and index < t <= end]
    if times:
        return Label(1, min(times).date().isoformat())
    if outcome.require_follow_up:
        seen = [t for t in (clinical_time(r) for r in resources) if t is not None]
        if not seen or max(seen) < end:
            return Label(None, reason="no record after the outcome window (follow-up not shown)")
    return Label(0)


def _event_time(outcome: Outcome, r: dict) -> datetime | None:
    rtype = r.get("resourceType")
    if rtype == "Patient":
        return parse_datetime(r.get("deceasedDateTime")) if outcome.death else None
    if rtype not in outcome.resource_types or not outcome.codes:
        return None
    if not any(matches_codes(r.get(f), outcome.codes) for f in _CODE_FIELDS[rtype]):
        return None
    if rtype == "Encounter":
        return parse_datetime((r.get("period") or {}).get("start"))
    return clinical_time(r)


def as_known_at(resources: Iterable[dict], as_of: datetime) -> list[dict]:
    """The record as it stood at `as_of`: resources dated later are left out, and a later death is not known.

    A hook fired now sees a record that ends now; a population scored at an earlier index date must
    see the same, or a later diagnosis (e.g. the very outcome being validated) would leak into the
    features. Resources without a clinical time (Patient, Practitioner) are kept.
    """
    latest = as_of + SKEW
    out = []
    for r in resources:
        when = _time_of(r)
        if when is not None and when > latest:
            continue
        if r.get("resourceType") == "Patient" and _later(r.get("deceasedDateTime"), latest):
            r = {k: v for k, v in r.items() if k != "deceasedDateTime"}
        out.append(r)
    return out


def _time_of(r: dict) -> datetime | None:
    if r.get("resourceType") == "Encounter":
        return parse_datetime((r.get("period") or {}).get("start"))
    return clinical_time(r)


def _later(value: Any, latest: datetime) -> bool:
    when = parse_datetime(value)
    return when is not None and when > latest
