"""Pure feature extraction: (definitions, resources, hook time) → a `FeatureVector` with provenance.

No I/O, no clock, no Flask: serving and training call the same functions (architecture habit 3/4).
Each extractor is `fn(defn, resources, ctx) -> Feature`; the registry `EXTRACTORS` maps a declared
`kind` to it, and an unknown kind is refused when the service files are loaded.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Callable, Hashable, Iterable, Mapping, Sequence

from models.feature_vector import Evidence, Feature, FeatureVector

from . import resources as R
from .units import UnitError, convert

OBSERVATION_OK = {"final", "amended", "corrected", "preliminary"}
CONDITION_ACTIVE = {"active", "recurrence", "relapse"}
MEDICATION_ACTIVE = {"active"}
# A result dated a few minutes after the hook's time is clock skew between systems, not the future.
SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class FeatureDef:
    """One declared feature of a service file (`[[features]]`)."""

    name: str
    kind: str
    source: tuple[str, ...] = ()
    label: str = ""
    unit: str | None = None
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    default: float | None = None
    default_note: str | None = None
    # What the declarations resolve to (parsed code sets, plausible range, window), worked out on first use and
    # kept: a service's features are read on every call and never change (`derived`).
    _derived: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def param(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)

    def derived(self, key: Hashable, compute: Callable[["FeatureDef"], Any]) -> Any:
        """`compute(self)` once per definition: a value worked out from the declarations alone, never from
        patient data."""
        try:
            return self._derived[key]
        except KeyError:
            value = self._derived[key] = compute(self)
            return value

    def codes(self, param: str = "codes") -> "CodeSet":
        """The declared code list `param` ("system|code", "system|E11.*"), parsed once."""
        return self.derived(("codes", param), lambda d: code_set(tuple(d.params.get(param, ()))))


@dataclass(frozen=True, slots=True)
class ExtractionContext:
    as_of: datetime
    patient: Mapping | None = None
    hook_context: Mapping = field(default_factory=lambda: MappingProxyType({}))
    # Resources of every source, for resolving references (e.g. MedicationRequest → Medication).
    all_resources: tuple[dict, ...] = ()
    # The observation sets chosen for this call, by name (`observation_sets.with_sets`).
    sets: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


Extractor = Callable[[FeatureDef, Sequence[dict], ExtractionContext], Feature]
EXTRACTORS: dict[str, Extractor] = {}
# Parameters each kind accepts (checked at load time), beyond the common ones.
KIND_PARAMS: dict[str, set[str]] = {}
# Optional load-time check of a kind's parameter values: params -> problem text or None.
KIND_CHECKS: dict[str, Callable[[Mapping[str, Any]], str | None]] = {}


def extractor(kind: str, params: Iterable[str] = (), check: Callable[[Mapping[str, Any]], str | None] | None = None):
    """Register `fn(defn, resources, ctx) -> Feature` as the extractor of `kind` (a service file's `kind = ...`).

    `params` names the parameters the kind understands; `check`, if given, validates their values
    when the service files load (a returned text stops start-up, naming the feature).
    """
    def register(fn: Extractor) -> Extractor:
        EXTRACTORS[kind] = fn
        KIND_PARAMS[kind] = set(params)
        if check is not None:
            KIND_CHECKS[kind] = check
        return fn

    return register


def extract(defs: Sequence[FeatureDef], data: Mapping[str, Sequence[dict]], ctx: ExtractionContext) -> FeatureVector:
    """Run each definition over the resources of its sources; apply declared defaults."""
    out = []
    pools: dict[tuple[str, ...], R.ResourcePool] = {}
    for d in defs:
        resources = pools.get(d.source)
        if resources is None:
            resources = pools[d.source] = R.ResourcePool(r for key in d.source for r in data.get(key, ()))
        feat = EXTRACTORS[d.kind](d, resources, ctx)
        # A declared default stands in for a value that was not recorded, never for an invalid one.
        if d.default is not None and feat.missing and not feat.invalid:
            note = d.default_note or f"not recorded; default {d.default:g} used"
            feat = Feature(d.name, feat.label, float(d.default), feat.unit, feat.evidence, note, imputed=True)
        out.append(feat)
    return FeatureVector(tuple(out), ctx.as_of)


def _missing(d: FeatureDef, note: str, *, invalid: bool = False) -> Feature:
    return Feature(d.name, d.label or d.name, None, d.unit, note=note, invalid=invalid)


def _found(d: FeatureDef, value: float, evidence: Iterable[Evidence] = (), note: str | None = None) -> Feature:
    return Feature(d.name, d.label or d.name, float(value), d.unit, tuple(evidence), note)


def _date_str(dt: datetime | None) -> str | None:
    return dt.date().isoformat() if dt else None


def shown_time(when: datetime) -> str:
    """A time as a card shows it: '2026-11-29 14:05 UTC' (the offset the record gave). Vital signs carry it, the
    time of an observation set and of each of its members (RCP NEWS2: a set is one time, not one day)."""
    zone = when.strftime("%z")
    zone = "UTC" if zone in ("+0000", "") else f"UTC{zone[:3]}:{zone[3:]}"
    return f"{when:%Y-%m-%d %H:%M} {zone}"


def stamp_for(d: FeatureDef, ctx: ExtractionContext) -> Callable[[datetime], str | None]:
    """How a feature's evidence is dated: a member of an observation set by its time (`shown_time`), every other
    feature by its day. Numbers and the set's coded members (ACVPU, oxygen) alike, so that a card shows them the same."""
    if not ctx.sets:
        return _date_str
    return shown_time if any(s in ctx.sets for s in d.source or ()) else _date_str


# ---- code sets --------------------------------------------------------------------------------


def matches_codes(concept: Any, codes: Iterable[str] | CodeSet) -> bool:
    """True when a Coding of `concept` is in `codes` ("system|code"; "system|E11.*" is a prefix), a declared list
    or the `CodeSet` a FeatureDef parsed it into once (`FeatureDef.codes`)."""
    if isinstance(codes, CodeSet):
        return codes.matches(concept)
    if not isinstance(concept, dict) or not concept.get("coding"):
        return False
    return code_set(codes if isinstance(codes, tuple) else tuple(codes)).matches(concept)


@dataclass(frozen=True, slots=True)
class CodeSet:
    """A declared code list, parsed: {(system, code)}, and the stems of its prefixes by system."""

    exact: frozenset[tuple[str, str]]
    stems: Mapping[str, tuple[str, ...]]

    def matches(self, concept: Any) -> bool:
        """True when a Coding of `concept` is in the set (see `matches_codes`)."""
        if not isinstance(concept, dict):
            return False
        codings = concept.get("coding")
        if not codings:
            return False
        exact, stems = self.exact, self.stems
        for c in codings:
            if not isinstance(c, dict) or c.get("code") is None:
                continue
            system, code = str(c.get("system", "")), str(c["code"])
            if (system, code) in exact:
                return True
            if stems and code.startswith(stems.get(system, ())):  # "E11.*": E11 itself and E11.9
                return True
        return False


@lru_cache(maxsize=4096)
def code_set(codes: tuple[str, ...]) -> CodeSet:
    """A declared code list, parsed once."""
    exact: set[tuple[str, str]] = set()
    stems: dict[str, tuple[str, ...]] = {}
    for spec in codes:
        system, _, code = spec.partition("|")
        if code.endswith("*"):
            stems[system] = stems.get(system, ()) + (code.rstrip("*").rstrip("."),)
        else:
            exact.add((system, code))
    return CodeSet(frozenset(exact), MappingProxyType(stems))


def mentions(concept: Any, names: Iterable[str]) -> bool:
    """True when the concept's text or a display names one of `names` (case-insensitive word match)."""
    if not names:
        return False
    text = f" {R.concept_text(concept).lower()} "
    return any(word in text or prefix in text for word, prefix in _name_needles(names if isinstance(names, tuple) else tuple(names)))


@lru_cache(maxsize=1024)
def _name_needles(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """A declared list of names as `mentions` looks for them, lowered once: (" name ", " name-")."""
    return tuple((f" {n.lower()} ", f" {n.lower()}-") for n in names)


# ---- demographics ---------------------------------------------------------------------------


@extractor("age")
def age(d: FeatureDef, _res: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """Whole years at the hook's time from Patient.birthDate."""
    p = ctx.patient
    if p is None:
        return _missing(d, "no Patient resource in the data")
    born = R.parse_datetime(p.get("birthDate"))
    if born is None:
        return _missing(d, "birth date not recorded")
    on = ctx.as_of.date()
    b = born.date()
    years = on.year - b.year - ((on.month, on.day) < (b.month, b.day))
    if years < 0:
        return _missing(d, "birth date is after the hook's time")
    return _found(d, years, [Evidence(R.reference_of(p), None)])


@extractor("sex", params={"equals"})
def sex(d: FeatureDef, _res: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """1.0 when Patient.gender equals `equals` (default "female"), else 0.0; missing if unknown."""
    p = ctx.patient
    gender = p.get("gender") if p else None
    if not p or gender not in ("male", "female"):
        return _missing(d, "administrative sex not recorded as male or female")
    return _found(d, 1.0 if gender == d.param("equals", "female") else 0.0, [Evidence(R.reference_of(p))])


US_CORE_RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
US_CORE_ETHNICITY = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"


@extractor("race", params={"code", "codes", "extension"})
def race(d: FeatureDef, _res: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """1.0 when the US Core race (or ethnicity) extension carries OMB `code` (e.g. 2054-5), or one of
    `codes` ("urn:oid:2.16.840.1.113883.6.238|2029-7": CDC codes, `ombCategory` or `detailed`), else 0.0."""
    p = ctx.patient or {}
    url = US_CORE_ETHNICITY if d.param("extension") == "ethnicity" else US_CORE_RACE
    codes: list[str] = []
    for ext in p.get("extension") or ():
        if isinstance(ext, dict) and ext.get("url") == url:
            for sub in ext.get("extension") or ():
                coding = sub.get("valueCoding") if isinstance(sub, dict) else None
                if sub.get("url") in ("ombCategory", "detailed") and isinstance(coding, dict):
                    codes.append(str(coding.get("code")))  # compared by code: some EHRs send another system URI
    if not codes:
        return _missing(d, f"{'ethnicity' if url == US_CORE_ETHNICITY else 'race'} not recorded")
    wanted = {c.partition("|")[2] for c in d.param("codes", ())} | ({d.param("code")} if d.param("code") else set())
    return _found(d, 1.0 if wanted & set(codes) else 0.0, [Evidence(R.reference_of(p))])


@extractor("ethnicity", params={"code"})
def ethnicity(d: FeatureDef, res: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """1.0 when the US Core ethnicity extension carries OMB `code` (2135-2 Hispanic or Latino), else 0.0."""
    return race(FeatureDef(d.name, d.kind, d.source, d.label, d.unit, MappingProxyType({**d.params, "extension": "ethnicity"}),
                           d.default, d.default_note), res, ctx)


@extractor("not_read")
def not_read(d: FeatureDef, _res: Sequence[dict], _ctx: ExtractionContext) -> Feature:
    """Always missing: an input of a model that this service does not read from the record (e.g. physical
    activity for the ADA Risk Test). Declaring it keeps every model input named in the service file, and the
    model then reports the item as not assessed instead of scoring a guessed value."""
    return _missing(d, "not read by this service")


# ---- observations ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Quantity:
    """What `observation_values` reads of a definition's declarations, resolved once (`FeatureDef.derived`)."""

    codes: tuple[str, ...]
    lo: float | None
    hi: float | None
    per_unit: Mapping[str, float] | None
    analyte: str | None
    target: str


def _quantity(d: FeatureDef) -> _Quantity:
    params = d.params
    lo, hi = params.get("plausible", (None, None))
    return _Quantity(tuple(params.get("codes", ())), lo, hi, params.get("per_unit"), params.get("analyte"), d.unit or "1")


def _time(reading: tuple) -> datetime:
    return reading[0]


def readings(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> tuple[list, list[str]]:
    """All usable values of the declared codes, newest first: [(time, value, Observation)], reasons.

    Looks at Observation.code and at each component (BP components of the 85354-9 panel),
    converts units, drops statuses that are not results, future values and implausible values
    (each drop recorded as a reason, never silently fed to a model). Newest first, and in record order
    among equal times. `observation_values` adds each value's Evidence; a feature citing one value (the
    latest, the lowest) makes that one's alone (`evidence_of`).
    """
    q = d.derived("quantity", _quantity)
    lo, hi, target = q.lo, q.hi, q.target
    found, rejected = [], []
    latest_ok = ctx.as_of + SKEW
    for obs, places in _observations_and_places(resources, q.codes):
        if obs.get("status") not in OBSERVATION_OK:
            continue
        when = R.clinical_time(obs)
        if when is None or when > latest_ok:
            continue
        for place in places:
            quantity = R.element(place.get("valueQuantity"))
            number, problem = R.read_number(quantity.get("value"))
            if problem:
                rejected.append(f"{R.reference_of(obs)}: invalid value ({problem})")
                continue
            if number is None:
                continue
            unit = quantity.get("code") or quantity.get("unit")
            try:
                value = convert(number, unit, target, q.per_unit, q.analyte)
            except UnitError:
                rejected.append(f"{R.reference_of(obs)}: unit {unit} not convertible to {d.unit}")
                continue
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                rejected.append(f"{R.reference_of(obs)}: {value:g} {d.unit} is outside the plausible range {lo}–{hi}")
                continue
            found.append((when, value, obs))
    found.sort(key=_time, reverse=True)
    return found, rejected


def evidence_of(d: FeatureDef, ctx: ExtractionContext, when: datetime, obs: Mapping) -> Evidence:
    """The Evidence of a value read from `obs` at `when` (dated as `stamp_for` says)."""
    return Evidence(R.reference_of(obs), stamp_for(d, ctx)(when))


def observation_values(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> tuple[list, list[str]]:
    """`readings` with each value's Evidence: [(time, value, Evidence)] newest first, reasons."""
    values, rejected = readings(d, resources, ctx)
    stamp = stamp_for(d, ctx)
    found = []
    evidence: dict[int, Evidence] = {}  # one per Observation, shared by its places
    for when, value, obs in values:
        ev = evidence.get(id(obs))
        if ev is None:
            ev = evidence[id(obs)] = Evidence(R.reference_of(obs), stamp(when))
        found.append((when, value, ev))
    return found, rejected


def _observations_and_places(resources: Sequence[dict], codes: Sequence[str]) -> Iterable[tuple[dict, list]]:
    """(Observation, the places carrying one of `codes`: the Observation itself, then its components)."""
    if isinstance(resources, R.ResourcePool):
        hits = resources.places_with(codes)
        if hits is not None:
            return hits
    out = []
    for obs in R.of_type(resources, "Observation"):
        places = [obs] if matches_codes(obs.get("code"), codes) else []
        places += [c for c in obs.get("component") or () if isinstance(c, dict) and matches_codes(c.get("code"), codes)]
        if places:
            out.append((obs, places))
    return out


def _lookback(d: FeatureDef) -> timedelta | None:
    days = d.param("lookback_days")
    return None if days is None else timedelta(days=days)


def since(d: FeatureDef, ctx: ExtractionContext) -> datetime | None:
    """The start of the feature's `lookback_days` window at the hook's time (None: no window)."""
    lookback = d.derived("lookback", _lookback)
    return None if lookback is None else ctx.as_of - lookback


def _window(d: FeatureDef, ctx: ExtractionContext, found: list) -> list:
    start = since(d, ctx)
    if start is None:
        return found
    return [t for t in found if t[0] >= start]


def newest_date(d: FeatureDef, ctx: ExtractionContext, found: list) -> str | None:
    """The date, as the feature's evidence shows it, of the newest of `found` (newest first), or None."""
    return stamp_for(d, ctx)(found[0][0]) if found else None


def no_value(d: FeatureDef, newest: str | None, rejected: list[str]) -> Feature:
    """The feature when no value is usable: not recorded (in the window: `newest` is then the date of the newest
    value, older than the window), or invalid when every value recorded was rejected (not a finite number,
    implausible, unit not convertible)."""
    if newest is not None:
        note = f"latest value ({newest}) is older than {d.param('lookback_days')} days"
    elif rejected:
        note = "no plausible value (" + "; ".join(rejected[:3]) + ")"
    else:
        note = "no result recorded"
    return _missing(d, note, invalid=newest is None and bool(rejected))


def rejected_note(rejected: list[str]) -> str | None:
    """Implausible or unconvertible values that were left out, recorded next to the value used."""
    if not rejected:
        return None
    more = f" (+{len(rejected) - 3} more)" if len(rejected) > 3 else ""
    return "ignored: " + "; ".join(rejected[:3]) + more


# Parameters every kind built on `observation_values` understands.
QUANTITY_PARAMS = {"codes", "lookback_days", "plausible", "per_unit", "analyte", "order"}


@extractor("latest_quantity", params=QUANTITY_PARAMS)
def latest_quantity(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """The newest plausible value of `codes` (Observation or component) within `lookback_days`, in `unit`."""
    found, rejected = readings(d, resources, ctx)
    start = since(d, ctx)
    if not found or (start is not None and found[0][0] < start):  # newest first: the first is the latest
        return no_value(d, newest_date(d, ctx, found), rejected)
    when, value, obs = found[0]
    return _found(d, value, [evidence_of(d, ctx, when, obs)], rejected_note(rejected))


@extractor("latest_coded", params={"codes", "answers", "lookback_days", "order"})
def latest_coded(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """1.0 when the newest Observation of `codes` has a valueCodeableConcept in `answers`, else 0.0."""
    newest = None
    codes, latest_ok = d.codes(), ctx.as_of + SKEW
    for obs in R.observations_of(resources, d.param("codes", ())):
        if obs.get("status") not in OBSERVATION_OK or not codes.matches(obs.get("code")):
            continue
        when = R.clinical_time(obs)
        if when is None or when > latest_ok or not isinstance(obs.get("valueCodeableConcept"), dict):
            continue
        if newest is None or when > newest[0]:
            newest = (when, obs)
    if newest is None or _window(d, ctx, [newest]) == []:
        return _missing(d, "no result recorded" if newest is None else f"latest result ({_date_str(newest[0])}) is too old")
    when, obs = newest
    hit = d.codes("answers").matches(obs["valueCodeableConcept"])
    return _found(d, 1.0 if hit else 0.0, [Evidence(R.reference_of(obs), _date_str(when))])


# ---- conditions and medications ---------------------------------------------------------------


def _condition_active(c: Mapping, as_of: datetime) -> bool:
    status = {code for _, code, _ in R.codings(c.get("clinicalStatus"))}
    verification = {code for _, code, _ in R.codings(c.get("verificationStatus"))}
    if verification & {"refuted", "entered-in-error"}:
        return False
    if status and not status & CONDITION_ACTIVE:
        return False
    onset = R.clinical_time(c)
    return onset is None or onset <= as_of + SKEW


@extractor("condition", params={"codes", "include_resolved", "names"})
def condition(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """1.0 when an active Condition (or any, with include_resolved) has a code in the set — or, with `names`,
    a text or display naming one of those phrases (for problem lists coded locally) — else 0.0.

    Absence from the patient's condition list counts as 0: the list is what the EHR knows.
    """
    any_status = bool(d.param("include_resolved"))
    codes, names = d.codes(), d.param("names", ())
    for c in R.of_type(resources, "Condition"):
        if (codes.matches(c.get("code")) or mentions(c.get("code"), names)) and (any_status or _condition_active(c, ctx.as_of)):
            # The note names the condition as the record does (a card shows it; the reference stays in the evidence).
            return _found(d, 1.0, [Evidence(R.reference_of(c), _date_str(R.clinical_time(c)))],
                          note=R.concept_label(c.get("code")) or None)
    return _found(d, 0.0, note="no matching condition on the problem list")
