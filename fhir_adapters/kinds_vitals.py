"""Feature kinds for bedside scores (NEWS2, qSOFA): ACVPU, altered mentation, supplemental oxygen, SpO2 scale.

Each reads only what is recorded inside its window and says so in the feature's note; nothing is
assumed normal.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterator, Mapping, Sequence

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
    stamp_for,
)
from .units import UnitError, convert

GOAL_OPEN = {"proposed", "planned", "accepted", "active", "on-hold"}


def timed_observations(resources: Sequence[dict], codes, ctx: ExtractionContext) -> Iterator[tuple[datetime, dict]]:
    """(time, Observation) of the codes with a result status and a time not in the future."""
    latest_ok = ctx.as_of + SKEW
    for obs in R.of_type(resources, "Observation"):
        if obs.get("status") not in OBSERVATION_OK or not matches_codes(obs.get("code"), codes):
            continue
        when = R.clinical_time(obs)
        if when is not None and when <= latest_ok:
            yield when, obs


def _within(d: FeatureDef, ctx: ExtractionContext, when: datetime) -> bool:
    days = d.param("lookback_days")
    return days is None or when >= ctx.as_of - timedelta(days=float(days))


def _too_old(d: FeatureDef, when: datetime) -> str:
    days = float(d.param("lookback_days"))
    span = f"{days * 24:g} hours" if days < 2 else f"{days:g} days"
    return f"latest result ({when.isoformat(timespec='minutes')}) is older than {span}"


def _acvpu_not_alert(obs: Mapping, alert: Sequence[str] | CodeSet = (), not_alert: Sequence[str] | CodeSet = ()) -> bool | None:
    """An ACVPU answer: Alert → False; new Confusion, Voice, Pain, Unresponsive → True; None when unreadable.
    Coded answers (`alert` / `not_alert`, "system|code") first, then the answer's words."""
    concept = obs.get("valueCodeableConcept")
    if matches_codes(concept, alert):
        return False
    if matches_codes(concept, not_alert):
        return True
    value = obs.get("valueString")
    text = value if isinstance(value, str) else R.concept_text(concept)
    t = text.strip().lower()
    if not t:
        return None
    if t in ("a", "alert") or t.startswith("alert"):
        return False
    if t in ("c", "v", "p", "u") or any(w in t for w in ("confus", "voice", "verbal", "pain", "unresponsive")):
        return True
    return None


def _gcs_value(obs: Mapping) -> float | None:
    value = obs.get("valueInteger")
    if value is None and isinstance(obs.get("valueQuantity"), Mapping):
        value = obs["valueQuantity"].get("value")
    number = R.read_number(value)[0]
    return number if number is not None and 3 <= number <= 15 else None


def _acvpu_readings(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> list:
    out, stamp = [], stamp_for(d, ctx)
    for when, obs in timed_observations(resources, d.codes("acvpu_codes"), ctx):
        flag = _acvpu_not_alert(obs, d.codes("alert_answers"), d.codes("not_alert_answers"))
        if flag is not None:
            word = "not alert (" + (R.concept_text(obs.get("valueCodeableConcept")) or obs.get("valueString") or "C/V/P/U") + ")"
            out.append((when, flag, Evidence(R.reference_of(obs), stamp(when)), "ACVPU " + (word if flag else "alert")))
    return out


def _gcs_readings(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> list:
    out, stamp = [], stamp_for(d, ctx)
    for when, obs in timed_observations(resources, d.codes("gcs_codes"), ctx):
        gcs = _gcs_value(obs)
        if gcs is not None:
            out.append((when, gcs < 15, Evidence(R.reference_of(obs), stamp(when)), f"GCS {gcs:g}"))
    return out


CONSCIOUSNESS_PARAMS = {"acvpu_codes", "alert_answers", "not_alert_answers", "gcs_codes", "lookback_days"}


@extractor("acvpu", params=CONSCIOUSNESS_PARAMS)
def acvpu(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """NEWS2 consciousness (RCP 2017, chart 1): 1.0 when the newest ACVPU is new Confusion, Voice, Pain or
    Unresponsive, 0.0 when Alert. GCS is not ACVPU: a GCS below 15 does not mean new confusion, so with only
    a GCS the parameter is missing (not assessed), and the note says a GCS was recorded."""
    readings = _acvpu_readings(d, resources, ctx)
    if not readings:
        gcs = max(_gcs_readings(d, resources, ctx), key=lambda t: t[0], default=None)
        note = "no ACVPU recorded" + (f" ({gcs[3]} recorded; GCS is not ACVPU)" if gcs else "")
        return _missing(d, note)
    when, not_alert, ev, note = max(readings, key=lambda t: t[0])
    if not _within(d, ctx, when):
        return _missing(d, _too_old(d, when))
    return _found(d, 1.0 if not_alert else 0.0, [ev], note=note)


@extractor("altered_mentation", params=CONSCIOUSNESS_PARAMS)
def altered_mentation(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """qSOFA altered mentation (Seymour 2016: GCS < 15): 1.0 when the newest GCS is below 15 or the newest
    ACVPU is not Alert (Voice, Pain, Unresponsive or new confusion all mean a GCS below 15); 0.0 otherwise."""
    readings = _acvpu_readings(d, resources, ctx) + _gcs_readings(d, resources, ctx)
    if not readings:
        return _missing(d, "no GCS or ACVPU recorded")
    when, altered, ev, note = max(readings, key=lambda t: t[0])
    if not _within(d, ctx, when):
        return _missing(d, _too_old(d, when))
    return _found(d, 1.0 if altered else 0.0, [ev], note=note)


def _invalid_number(obs: Mapping) -> str | None:
    """Why the Observation's value is an unusable number (NaN, ±Infinity, out of range), or None."""
    q = obs.get("valueQuantity")
    return R.read_number(q.get("value"))[1] if isinstance(q, Mapping) else None


def _quantity(obs: Mapping, unit: str) -> float | None:
    q = R.element(obs.get("valueQuantity"))
    number = R.read_number(q.get("value"))[0]
    if number is None:
        return None
    try:
        return convert(number, q.get("code") or q.get("unit"), unit)
    except UnitError:
        return None


@extractor("supplemental_oxygen", params={"flow_codes", "fio2_codes", "lookback_days"})
def supplemental_oxygen(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """1.0 when the newest inhaled-oxygen flow is > 0 L/min or FiO2 > 21 %; 0.0 when it records air."""
    readings, invalid = [], []
    for when, obs in timed_observations(resources, d.codes("flow_codes"), ctx):
        flow = _quantity(obs, "L/min")
        if flow is not None and flow >= 0:
            readings.append((when, flow > 0, obs, f"oxygen flow {flow:g} L/min"))
        elif _invalid_number(obs):
            invalid.append(f"{R.reference_of(obs)}: invalid value ({_invalid_number(obs)})")
    for when, obs in timed_observations(resources, d.codes("fio2_codes"), ctx):
        q = R.element(obs.get("valueQuantity"))
        value = R.read_number(q.get("value"))[0]
        if value is not None:
            pct = value * 100 if value <= 1.0 and (q.get("code") or q.get("unit")) != "%" else value
            if 15 <= pct <= 100:
                readings.append((when, pct > 21, obs, f"FiO2 {pct:g} %"))
        elif _invalid_number(obs):
            invalid.append(f"{R.reference_of(obs)}: invalid value ({_invalid_number(obs)})")
    if not readings:
        if invalid:  # an invalid oxygen reading is not "not charted": no default (air) may stand in for it
            return _missing(d, "no plausible value (" + "; ".join(invalid[:3]) + ")", invalid=True)
        return _missing(d, "no inhaled oxygen flow or FiO2 recorded")
    when, on_o2, obs, note = max(readings, key=lambda t: t[0])
    if not _within(d, ctx, when):
        return _missing(d, _too_old(d, when))
    return _found(d, 1.0 if on_o2 else 0.0, [Evidence(R.reference_of(obs), stamp_for(d, ctx)(when))], note=note)


@extractor("hypercapnic_target", params={"codes", "goal_codes", "target_max"})
def hypercapnic_target(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """1.0 when NEWS2 SpO2 Scale 2 applies: an active hypercapnic respiratory failure Condition in `codes`,
    or an open Goal on an SpO2 code whose target range tops out at `target_max` % or lower (88–92 %)."""
    for c in R.of_type(resources, "Condition"):
        if matches_codes(c.get("code"), d.codes()) and _condition_active(c, ctx.as_of):
            return _found(d, 1.0, [Evidence(R.reference_of(c), _date_str(R.clinical_time(c)))],
                          note="hypercapnic respiratory failure on the problem list")
    top = float(d.param("target_max", 92))
    for g in R.of_type(resources, "Goal"):
        if g.get("lifecycleStatus") not in GOAL_OPEN:
            continue
        for t in g.get("target") or ():
            rng = t.get("detailRange") if isinstance(t, Mapping) else None
            high = R.read_number(((rng or {}).get("high") or {}).get("value"))[0]
            if high is not None and high <= top and matches_codes(t.get("measure"), d.codes("goal_codes")):
                low = R.read_number(((rng or {}).get("low") or {}).get("value"))[0]
                return _found(d, 1.0, [Evidence(R.reference_of(g), None)],
                              note=f"prescribed SpO2 target {f'{low:g}' if low is not None else '?'}–{high:g} %")
    return _found(d, 0.0, note="no hypercapnic respiratory failure or 88–92 % SpO2 target recorded: Scale 1")
