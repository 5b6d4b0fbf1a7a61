"""Turn prefetch values and search results into resources, quickly.

This is the only module that imports `fhir.resources` (R4B: EHRs send R4, the top level is R5).
Typed validation is used for the few single resources a card depends on (Patient, Encounter);
the thousands of Observations of a large record stay plain dicts read through the small accessors
below, because validating each one would cost far more than parsing the JSON.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from functools import lru_cache
from typing import Any, Callable, Hashable, Iterable, Iterator, Mapping, Sequence

from .errors import FhirInvalidResource

TYPED_RESOURCES = ("Patient", "Encounter")


# Why a prefetch key's data could not be obtained; cards word each differently from "not recorded".
NO_ACCESS = "no-access"  # not prefetched and no FHIR server access given
TIMEOUT = "timeout"  # the FHIR server (or the EHR's prefetch) did not answer in time
ERROR = "error"  # an error answer, an invalid resource, an incomplete result


@dataclass(frozen=True, slots=True)
class Unavailable:
    """Why a key's data could not be obtained: a PHI-free `reason` and its `cause` (one of the three above).
    Its text is the reason, so it prints and serialises as before."""

    reason: str
    cause: str = ERROR

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True, slots=True)
class KeyData:
    """What one prefetch key holds after resolution.

    `resources` is empty when the key is known to have no data (a `null` prefetch value, PREFETCH-6).
    `unavailable` explains why data could not be obtained (an OperationOutcome, a failed fetch)
    when the key's policy let the invocation go on without it.
    """

    resources: tuple[dict, ...] = ()
    unavailable: Unavailable | None = None
    fetched: bool = False


PatientData = Mapping[str, KeyData]


def warm_up() -> None:
    """Import and build the typed R4B classes once at start-up (before gunicorn forks), so that the
    first call of each worker does not pay about a second of lazy imports."""
    from fhir.resources.R4B import get_fhir_model_class

    samples = {"Patient": {"resourceType": "Patient", "birthDate": "1970-01-01"},
               "Encounter": {"resourceType": "Encounter", "status": "finished", "class": {"code": "IMP"}}}
    for rtype in TYPED_RESOURCES:
        get_fhir_model_class(rtype).model_validate(samples[rtype])


def validate_resource(resource: Any, expected_type: str | None = None) -> dict:
    """Check that `resource` is a FHIR R4 resource; run full R4B validation for typed resources.

    Returns the resource (as the same dict). Raises `FhirInvalidResource`.
    """
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise FhirInvalidResource("not a FHIR resource (no resourceType)")
    rtype = resource["resourceType"]
    if expected_type and rtype != expected_type:
        raise FhirInvalidResource(f"expected a {expected_type}, got a {rtype}")
    if rtype in TYPED_RESOURCES:
        from fhir.resources.R4B import get_fhir_model_class  # the only R4B import site

        try:
            get_fhir_model_class(rtype).model_validate(resource)
        except Exception as exc:  # pydantic's ValidationError; its text may quote patient data
            raise FhirInvalidResource(f"invalid {rtype} resource ({type(exc).__name__})") from None
    return resource


def outcome_text(outcome: Mapping) -> str:
    """A short, PHI-free description of an OperationOutcome (its issue codes)."""
    codes = [str(i.get("code", "?")) for i in outcome.get("issue", []) if isinstance(i, dict)]
    return "OperationOutcome: " + (", ".join(codes) or "no issue")


def split_value(value: Mapping) -> tuple[list[dict], list[Mapping]]:
    """Split a prefetch value or search result into (resources, OperationOutcomes) (PREFETCH-3).

    A Bundle contributes its entries' resources; OperationOutcome entries and search-mode
    `outcome` entries are returned separately so the caller can apply the key's failure policy.
    """
    rtype = value.get("resourceType")
    if rtype == "OperationOutcome":
        return [], [value]
    if rtype != "Bundle":
        return [dict(value)], []
    resources: list[dict] = []
    outcomes: list[Mapping] = []
    for entry in value.get("entry") or ():
        res = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(res, dict) or not isinstance(res.get("resourceType"), str):
            continue
        mode = (entry.get("search") or {}).get("mode")
        if res["resourceType"] == "OperationOutcome":
            # A warning-only outcome (e.g. "results truncated") does not mean the data is missing.
            if mode == "outcome" and all(i.get("severity") in ("information", "warning") for i in res.get("issue", [])):
                continue
            outcomes.append(res)
        else:
            resources.append(res)
    return resources, outcomes


def next_link(bundle: Mapping) -> str | None:
    for link in bundle.get("link") or ():
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None


# ---- small accessors over plain dicts -------------------------------------------------------


def element(value: Any) -> Mapping[str, Any]:
    """A FHIR complex element (a JSON object) as a mapping; {} when it is absent or not an object, so that
    reading a field of a malformed element finds nothing instead of raising."""
    if type(value) is dict:  # what parsed JSON holds: no ABC check, which costs ten times more
        return value
    return value if isinstance(value, Mapping) else {}


def read_number(value: Any) -> tuple[float | None, str | None]:
    """A FHIR JSON number as a float: (value, None); (None, None) when `value` is no number at all; (None,
    problem) when it is a number that cannot be used. The FHIR client keeps `NaN`, `Infinity` and `1e999`
    as Python floats (its parser accepts them), so every numeric read goes through here and an extractor
    records such a value as invalid instead of comparing NaN with a threshold (always false)."""
    if type(value) is float:  # the usual JSON number, read without the conversions below
        return (value, None) if math.isfinite(value) else (None, "not a finite number")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond a double
        return None, "a number out of range"
    if not math.isfinite(number):
        return None, "not a finite number"
    return number, None


def codings(concept: Any) -> Iterator[tuple[str, str, str]]:
    """(system, code, display) of each Coding in a CodeableConcept."""
    if not isinstance(concept, dict):
        return
    for c in concept.get("coding") or ():
        if isinstance(c, dict) and c.get("code") is not None:
            yield str(c.get("system", "")), str(c["code"]), str(c.get("display", ""))


def _coding_keys(concept: Any) -> list[str]:
    """"system|code" of each Coding in a CodeableConcept, as `codings` reads them (the pool's index)."""
    if not isinstance(concept, dict):
        return []
    return [f"{c.get('system', '')}|{c['code']}" for c in concept.get("coding") or ()
            if isinstance(c, dict) and c.get("code") is not None]


def concept_text(concept: Any) -> str:
    """Every word of a CodeableConcept (its text and each coding's display), for matching by name."""
    if not isinstance(concept, dict):
        return ""
    parts = [concept.get("text") or ""] + [d for _, _, d in codings(concept)]
    return " ".join(p for p in parts if p)


def concept_label(concept: Any) -> str:
    """A CodeableConcept as a card names it: its text, else its first coding's display ('' when neither)."""
    if not isinstance(concept, dict):
        return ""
    return concept.get("text") or next((d for _, _, d in codings(concept) if d), "")


def medication_resource(order: Mapping, pool: Sequence[dict] = (), full_urls: Mapping[str, dict] | None = None) -> dict | None:
    """The Medication a MedicationRequest's `medicationReference` names: contained (`#id`), a Bundle entry by
    `fullUrl`, or by id in `pool`; None for a `medicationCodeableConcept` or an unresolvable reference."""
    ref = (order.get("medicationReference") or {}).get("reference")
    if not isinstance(ref, str):
        return None
    if ref.startswith("#"):
        med = next((m for m in order.get("contained") or () if isinstance(m, dict) and m.get("id") == ref[1:]), None)
    elif full_urls and ref in full_urls:
        med = full_urls[ref]
    else:
        rtype, _, rid = ref.rstrip("/").rpartition("/")
        med = next((m for m in pool if m.get("resourceType") == "Medication" and m.get("id") == rid), None) \
            if rtype.endswith("Medication") else None
    return med if isinstance(med, dict) and med.get("resourceType") == "Medication" else None


def medication_concept(order: Mapping, pool: Sequence[dict] = (), full_urls: Mapping[str, dict] | None = None) -> dict | None:
    """The drug of a MedicationRequest: `medicationCodeableConcept`, or the `code` of the Medication its
    `medicationReference` names (see `medication_resource`)."""
    if isinstance(order.get("medicationCodeableConcept"), dict):
        return order["medicationCodeableConcept"]
    med = medication_resource(order, pool, full_urls)
    code = med.get("code") if med else None
    return code if isinstance(code, dict) else None


def parse_datetime(value: Any) -> datetime | None:
    """FHIR date/dateTime/instant → aware datetime (partial dates at their start, UTC if no zone)."""
    if not isinstance(value, str) or len(value) < 4:
        return None
    return _parse_datetime(value)


@lru_cache(maxsize=8192)  # several features read the same dates; datetimes are immutable
def _parse_datetime(value: str) -> datetime | None:
    try:
        if len(value) == 4:
            return datetime(int(value), 1, 1, tzinfo=timezone.utc)
        if len(value) == 7:
            return datetime(int(value[:4]), int(value[5:7]), 1, tzinfo=timezone.utc)
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), tzinfo=timezone.utc)
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def clinical_time(resource: Mapping) -> datetime | None:
    """When an observation/condition/order applies: effective[x], onset, authoredOn, then issued."""
    for key in ("effectiveDateTime", "effectiveInstant", "onsetDateTime", "authoredOn", "recordedDate", "issued"):
        if key in resource:
            return parse_datetime(resource[key])
    for key in ("effectivePeriod", "onsetPeriod"):
        period = resource.get(key)
        if isinstance(period, dict):
            return parse_datetime(period.get("end") or period.get("start"))
    return None


def reference_of(resource: Mapping) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id', '?')}"


def about_another_patient(resource: Mapping, patient_id: str) -> bool:
    """True when the resource's `subject` (or `patient`) names a Patient other than `patient_id` — data of
    another patient in a prefetch or a search result is never used. A reference to something other than a
    Patient (a Group, a contained resource) or no reference at all is not judged here."""
    own = f"Patient/{patient_id}"
    for key in ("subject", "patient"):
        ref = resource.get(key)
        target = ref.get("reference") if isinstance(ref, dict) or isinstance(ref, Mapping) else None
        if target == own:  # the usual case, without taking the reference apart
            return False
        if isinstance(target, str) and "/" in target:
            rtype, rid = target.split("/_history")[0].rstrip("/").split("/")[-2:]
            if rtype == "Patient":
                return rid != patient_id
    return False


# The places of an Observation whose code alone carries the coding (the usual laboratory result).
_CODE_ONLY = (-1,)


def of_type(resources: Iterable[dict], *types: str) -> Iterator[dict]:
    return (r for r in resources if r.get("resourceType") in types)


class ResourcePool(list):
    """The resources of one source combination, shared by the features reading it, with a lazily
    built index of Observations by coding: a 5,000-Observation record is scanned once, not once per
    feature. Extractors treat it as a read-only sequence. A pool lives for one extraction (one call)."""

    __slots__ = ("_by_code", "_places", "_shared")

    def __init__(self, resources: Iterable[dict] = ()):
        super().__init__(resources)
        self._by_code: dict[str, list[tuple[int, tuple[int, ...]]]] | None = None
        self._places: dict[tuple[str, ...], list[tuple[dict, list[dict]]]] = {}  # places_with's answers, by codes
        self._shared: dict[Hashable, Any] = {}

    def shared(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """`compute()` once per pool: what several features of one call derive alike from these resources (e.g.
        the active medication orders). `key` names the derivation; the value is read-only to its readers."""
        try:
            return self._shared[key]
        except KeyError:
            value = self._shared[key] = compute()
            return value

    @staticmethod
    def once(resources: Sequence[dict], key: Hashable, compute: Callable[[], Any]) -> Any:
        """`compute()` once per pool when `resources` is one (see `shared`), else every time."""
        return resources.shared(key, compute) if isinstance(resources, ResourcePool) else compute()

    def only_observations(self) -> bool:
        """True when every resource of the pool is an Observation."""
        return self.shared("only observations", lambda: all(r.get("resourceType") == "Observation" for r in self))

    def _index(self) -> dict[str, list[tuple[int, tuple[int, ...]]]]:
        """"system|code" → [(position, places)] in record order; places in order: -1 is Observation.code,
        k ≥ 0 its component k."""
        if self._by_code is None:
            by_code: dict[str, list[tuple[int, tuple[int, ...]]]] = {}
            for i, r in enumerate(self):
                if r.get("resourceType") != "Observation":
                    continue
                components = r.get("component")
                if not components:  # most results: the code alone, one entry per distinct coding
                    keys = _coding_keys(r.get("code"))
                    for key in keys if len(keys) == 1 else dict.fromkeys(keys):
                        by_code.setdefault(key, []).append((i, _CODE_ONLY))
                    continue
                places: dict[str, list[int]] = {key: [-1] for key in _coding_keys(r.get("code"))}
                for k, comp in enumerate(components):
                    if isinstance(comp, dict):
                        for key in _coding_keys(comp.get("code")):
                            at = places.setdefault(key, [])
                            if not at or at[-1] != k:
                                at.append(k)
                for key, at in places.items():
                    by_code.setdefault(key, []).append((i, tuple(at)))
            self._by_code = by_code
        return self._by_code

    def places_with(self, codes: Iterable[str]) -> list[tuple[dict, list[dict]]] | None:
        """Observations having one of `codes`, in record order, each with the places that carry it (the
        Observation itself first, then its components in order); None when a code is a prefix. The
        features of one call that read the same codes share the answer (treat it as read-only)."""
        codes = tuple(codes)
        if codes in self._places:
            return self._places[codes]
        for c in codes:
            if c.endswith("*"):
                return None
        index = self._index()
        if len(codes) == 1:
            found = index.get(codes[0], ())
        else:
            merged: dict[int, tuple[int, ...]] = {}
            for c in codes:
                for i, at in index.get(c, ()):
                    seen = merged.get(i)  # an Observation carrying two of the codes: the places of both, in order
                    merged[i] = at if seen is None else tuple(sorted(set(seen) | set(at)))
            found = sorted(merged.items())
        out = []
        for i, at in found:
            obs = self[i]
            if at is _CODE_ONLY:
                out.append((obs, [obs]))
                continue
            components = obs.get("component") or ()
            out.append((obs, [obs if k == -1 else components[k] for k in at]))
        self._places[codes] = out
        return out

    def observations_with(self, codes: Iterable[str]) -> list[dict] | None:
        """Observations having one of `codes` (on code or a component), in record order; None for prefixes."""
        hits = self.places_with(codes)
        return None if hits is None else [obs for obs, _ in hits]


def observations_of(resources: Sequence[dict], codes: Iterable[str]) -> Iterable[dict]:
    """The Observations worth looking at for `codes`: the pool's index when there is one, else all."""
    if isinstance(resources, ResourcePool):
        hits = resources.observations_with(codes)
        if hits is not None:
            return hits
    return of_type(resources, "Observation")
