"""Feature kinds about the hook's encounter (`context.encounterId`): length of stay, first vitals of
the stay, and whether a diagnosis belongs to this stay. Pure, like every extractor in `features`.

The encounter is the `Encounter` whose id is `context.encounterId`, found in the feature's sources
(e.g. prefetch `encounter: Encounter/{{context.encounterId}}`) or among all prefetched resources;
without it these features are missing (never guessed from another encounter).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Mapping, Sequence

from . import resources as R
from .features import (
    OBSERVATION_OK,
    Evidence,
    ExtractionContext,
    Feature,
    FeatureDef,
    _date_str,
    _found,
    _missing,
    extractor,
    matches_codes,
    observation_values,
)


def current_encounter(resources: Sequence[dict], ctx: ExtractionContext) -> dict | None:
    eid = ctx.hook_context.get("encounterId")
    if not isinstance(eid, str) or not eid:
        return None
    for r in list(resources) + list(ctx.all_resources):
        if r.get("resourceType") == "Encounter" and r.get("id") == eid:
            return r
    return None


def stay_window(enc: Mapping, ctx: ExtractionContext, hours_before: float = 0) -> tuple[datetime, datetime, bool] | None:
    """(from, to, still_open) of the stay; an open stay (no period.end, as at discharge) ends at the hook's time."""
    period = enc.get("period") or {}
    start = R.parse_datetime(period.get("start"))
    if start is None:
        return None
    end = R.parse_datetime(period.get("end"))
    if end is None or end > ctx.as_of:
        return start - timedelta(hours=hours_before), ctx.as_of, True
    return start - timedelta(hours=hours_before), end, False


def _refers_to(resource: Mapping, enc: Mapping) -> bool:
    ref = (resource.get("encounter") or resource.get("context") or {}).get("reference")
    return isinstance(ref, str) and ref.split("/_history")[0].endswith(f"Encounter/{enc.get('id')}")


@extractor("encounter_length_of_stay")
def encounter_length_of_stay(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """Calendar days from Encounter.period.start to its end (or to the hook's time while the stay is open)."""
    enc = current_encounter(resources, ctx)
    if enc is None:
        return _missing(d, "the hook's encounter is not available")
    window = stay_window(enc, ctx)
    if window is None:
        return _missing(d, f"{R.reference_of(enc)} has no period.start")
    start, end, still_open = window
    days = (end.date() - start.date()).days
    if days < 0:
        return _missing(d, f"{R.reference_of(enc)} ends before it starts")
    note = "stay still open: counted to the hook's time" if still_open else None
    return _found(d, days, [Evidence(R.reference_of(enc), _date_str(start))], note)


@extractor("encounter_first_quantity", params={"codes", "plausible", "per_unit", "hours_before_start"})
def encounter_first_quantity(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """The first value of `codes` in this stay: an Observation that names the encounter, or whose time lies
    from `hours_before_start` hours before admission (emergency department) to the end of the stay."""
    enc = current_encounter(resources, ctx)
    if enc is None:
        return _missing(d, "the hook's encounter is not available")
    window = stay_window(enc, ctx, float(d.param("hours_before_start", 0)))
    if window is None:
        return _missing(d, f"{R.reference_of(enc)} has no period.start")
    lo, hi, _ = window

    def in_stay(obs: Mapping) -> bool:
        when = R.clinical_time(obs)
        return _refers_to(obs, enc) or (when is not None and lo <= when <= hi)

    found, rejected = observation_values(d, [r for r in R.of_type(resources, "Observation") if in_stay(r)], ctx)
    if not found:
        reason = "; ".join(rejected[:3]) if rejected else "no result recorded during this stay"
        return _missing(d, reason, invalid=bool(rejected))  # recorded but unusable (implausible, unit) is invalid
    _, value, ev = found[-1]  # observation_values sorts newest first
    return _found(d, value, [ev])


@extractor("encounter_condition", params={"codes", "hours_before_start", "finding_codes"})
def encounter_condition(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """1.0 when this stay is for (or complicated by) a condition in `codes`: Encounter.reasonCode, an
    Encounter.diagnosis, a Condition that names the encounter or began during the stay, or (with
    `finding_codes`, e.g. an ECG interpretation) an Observation of the stay whose coded value is in
    `codes`; 0.0 otherwise. A matching Condition from before the stay alone does not count."""
    enc = current_encounter(resources, ctx)
    if enc is None:
        return _missing(d, "the hook's encounter is not available")
    codes = d.codes()
    for reason in enc.get("reasonCode") or ():
        if matches_codes(reason, codes):
            return _found(d, 1.0, [Evidence(R.reference_of(enc), _date_str(R.parse_datetime((enc.get("period") or {}).get("start"))))])
    diagnosed = {(dx.get("condition") or {}).get("reference") for dx in enc.get("diagnosis") or () if isinstance(dx, dict)}
    window = stay_window(enc, ctx, float(d.param("hours_before_start", 0)))
    pool = {id(r): r for r in list(resources) + list(ctx.all_resources)}.values()
    for c in R.of_type(pool, "Condition"):
        if not matches_codes(c.get("code"), codes) or not _condition_usable(c):
            continue
        onset = R.clinical_time(c)
        during = window is not None and onset is not None and window[0] <= onset <= window[1]
        named = any(isinstance(ref, str) and ref.endswith(R.reference_of(c)) for ref in diagnosed)
        if named or _refers_to(c, enc) or during:
            return _found(d, 1.0, [Evidence(R.reference_of(c), _date_str(onset))])
    finding = _finding_in_stay(d, resources, ctx, enc, window)
    if finding is not None:
        return finding
    return _found(d, 0.0, note=f"no matching diagnosis for {R.reference_of(enc)}")


def _finding_in_stay(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext, enc: Mapping, window) -> Feature | None:
    """An Observation of `finding_codes` (e.g. an ECG interpretation) in this stay whose value is one of `codes`."""
    if not d.param("finding_codes"):
        return None
    finding_codes = d.codes("finding_codes")
    for obs in R.of_type(resources, "Observation"):
        if obs.get("status") not in OBSERVATION_OK or not matches_codes(obs.get("code"), finding_codes):
            continue
        when = R.clinical_time(obs)
        in_stay = _refers_to(obs, enc) or (window is not None and when is not None and window[0] <= when <= window[1])
        if in_stay and matches_codes(obs.get("valueCodeableConcept"), d.codes()):
            return _found(d, 1.0, [Evidence(R.reference_of(obs), _date_str(when))])
    return None


def _condition_usable(c: Mapping) -> bool:
    """Not refuted or entered in error; an acute MI may already be 'resolved' at discharge, so any clinical status counts."""
    verification = {code for _, code, _ in R.codings(c.get("verificationStatus"))}
    return not verification & {"refuted", "entered-in-error"}
