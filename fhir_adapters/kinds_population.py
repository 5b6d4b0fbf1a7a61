"""Feature kinds that decide who a service is for (its `[[population]]`): pregnancy, the hook's
encounter (class and status), kidney replacement therapy. Each is a 0/1 flag whose note says what the
record shows ("pregnancy status: pregnant (2026-11-20)", "ambulatory (AMB)"), so that a card can name why a
score does not apply. Absence counts as 0 only when the data was read: whether it was is the pipeline's
knowledge (`cds_service.applicability`), not the extractor's.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Mapping, Sequence

from . import resources as R
from .features import (
    OBSERVATION_OK,
    SKEW,
    CodeSet,
    Evidence,
    ExtractionContext,
    Feature,
    FeatureDef,
    _condition_active,
    _date_str,
    _found,
    _missing,
    extractor,
    matches_codes,
)
from .kinds_encounter import current_encounter

EPISODE_OPEN = {"active", "waitlist", "onhold"}
PROCEDURE_DONE = {"completed", "in-progress"}


def _answer_text(concept: object) -> str:
    return R.concept_text(concept).strip().lower()


def _status_reading(obs: Mapping, pregnant: Sequence[str] | CodeSet, not_pregnant: Sequence[str] | CodeSet) -> bool | None:
    """A pregnancy-status answer: True (pregnant), False (not pregnant), None (unknown or unreadable)."""
    value = obs.get("valueCodeableConcept")
    if matches_codes(value, pregnant):
        return True
    if matches_codes(value, not_pregnant):
        return False
    text = _answer_text(value)  # uncoded answers as LOINC's answer list words them
    return True if text == "pregnant" else False if text == "not pregnant" else None


@extractor("pregnancy", params={"codes", "status_codes", "pregnant_answers", "not_pregnant_answers", "episode_codes",
                                "lookback_days"})
def pregnancy(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """1.0 when the record shows a current pregnancy: an active Condition in `codes`, the newest
    pregnancy-status Observation (`status_codes`, within `lookback_days`) answered pregnant, or an open
    EpisodeOfCare whose type is in `episode_codes`. A newer status answered "not pregnant" outweighs an
    older Condition (a problem list is often not closed after delivery). 0.0 otherwise."""
    found: list[tuple[datetime | None, str, Evidence]] = []  # (date, what, evidence) of each positive finding
    for c in R.of_type(resources, "Condition"):
        if matches_codes(c.get("code"), d.codes()) and _condition_active(c, ctx.as_of):
            when = R.clinical_time(c)
            what = R.concept_label(c.get("code")) or "pregnancy"
            found.append((when, f"on the problem list: {what}", Evidence(R.reference_of(c), _date_str(when))))
    since = ctx.as_of - timedelta(days=float(d.param("lookback_days", 300)))
    newest = None
    for obs in R.of_type(resources, "Observation"):
        if obs.get("status") not in OBSERVATION_OK or not matches_codes(obs.get("code"), d.codes("status_codes")):
            continue
        when = R.clinical_time(obs)
        reading = _status_reading(obs, d.codes("pregnant_answers"), d.codes("not_pregnant_answers"))
        if when is None or reading is None or when < since or when > ctx.as_of + SKEW:
            continue
        if newest is None or when > newest[0]:
            newest = (when, reading, obs)
    for ep in R.of_type(resources, "EpisodeOfCare"):
        end = R.parse_datetime((ep.get("period") or {}).get("end"))
        if ep.get("status") in EPISODE_OPEN and (end is None or end > ctx.as_of) and any(
                matches_codes(t, d.codes("episode_codes")) for t in ep.get("type") or ()):
            start = R.parse_datetime((ep.get("period") or {}).get("start"))
            found.append((start, "an open pregnancy episode of care", Evidence(R.reference_of(ep), _date_str(start))))
    if newest is not None:
        when, reading, obs = newest
        ev = Evidence(R.reference_of(obs), _date_str(when))
        if reading:
            found.append((when, f"pregnancy status: pregnant ({_date_str(when)})", ev))
        elif all(f[0] is not None and f[0] < when for f in found):
            return _found(d, 0.0, [ev], f"pregnancy status: not pregnant ({_date_str(when)})")
    if found:
        when, what, ev = max(found, key=lambda f: f[0] or datetime.min.replace(tzinfo=ctx.as_of.tzinfo))
        return _found(d, 1.0, [ev], what)
    return _found(d, 0.0, note="no pregnancy recorded")


def _encounter_or_missing(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> dict | Feature:
    enc = current_encounter(resources, ctx)
    return enc if enc is not None else _missing(d, "the hook's encounter is not in the data")


@extractor("encounter_class", params={"classes"})
def encounter_class(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """1.0 when the hook's Encounter.class (a Coding, v3 ActCode) is in `classes`; the note names the class."""
    enc = _encounter_or_missing(d, resources, ctx)
    if isinstance(enc, Feature):
        return enc
    cls = R.element(enc.get("class"))
    shown = f"{cls.get('display') or cls.get('code') or 'no class'} ({cls.get('code') or '?'})"
    hit = matches_codes({"coding": [cls]}, d.param("classes", ()))
    return _found(d, 1.0 if hit else 0.0, [Evidence(R.reference_of(enc))], shown)


@extractor("encounter_status", params={"statuses"})
def encounter_status(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """1.0 when the hook's Encounter.status is one of `statuses` (FHIR R4 EncounterStatus codes)."""
    enc = _encounter_or_missing(d, resources, ctx)
    if isinstance(enc, Feature):
        return enc
    status = str(enc.get("status") or "unknown")
    return _found(d, 1.0 if status in d.param("statuses", ()) else 0.0, [Evidence(R.reference_of(enc))], status)


@extractor("condition_or_procedure", params={"codes", "procedure_codes", "encounter_type_codes", "lookback_days"})
def condition_or_procedure(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """1.0 when an active Condition has a code in `codes`, or a completed (or ongoing) Procedure in
    `procedure_codes` or an Encounter whose type is in `encounter_type_codes` lies within `lookback_days`
    (e.g. kidney replacement therapy: Z99.2 dependence on dialysis, N18.6, a dialysis procedure). 0.0 otherwise."""
    for c in R.of_type(resources, "Condition"):
        if matches_codes(c.get("code"), d.codes()) and _condition_active(c, ctx.as_of):
            when = R.clinical_time(c)
            return _found(d, 1.0, [Evidence(R.reference_of(c), _date_str(when))],
                          f"on the problem list: {R.concept_label(c.get('code')) or 'coded condition'}")
    since = ctx.as_of - timedelta(days=float(d.param("lookback_days", 90)))
    for p in R.of_type(resources, "Procedure"):
        when = R.parse_datetime(p.get("performedDateTime")) or R.parse_datetime(
            (p.get("performedPeriod") or {}).get("end") or (p.get("performedPeriod") or {}).get("start"))
        if (p.get("status") in PROCEDURE_DONE and matches_codes(p.get("code"), d.codes("procedure_codes"))
                and when is not None and since <= when <= ctx.as_of + SKEW):
            return _found(d, 1.0, [Evidence(R.reference_of(p), _date_str(when))],
                          f"procedure: {R.concept_label(p.get('code')) or 'coded procedure'} ({_date_str(when)})")
    for e in R.of_type(resources, "Encounter"):
        when = R.parse_datetime((e.get("period") or {}).get("start"))
        if (any(matches_codes(t, d.codes("encounter_type_codes")) for t in e.get("type") or ())
                and when is not None and since <= when <= ctx.as_of + SKEW):
            return _found(d, 1.0, [Evidence(R.reference_of(e), _date_str(when))], f"encounter for it ({_date_str(when)})")
    return _found(d, 0.0, note="none recorded")
