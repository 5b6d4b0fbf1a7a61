"""Feature kinds for bedside scores (NEWS2, qSOFA): consciousness, supplemental oxygen, SpO2 scale.

Each reads only what is recorded inside its window and says so in the feature's note; nothing is
assumed normal (issue #5, item 4).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterator, Mapping, Sequence

from . import resources as R
from .features import (OBSERVATION_OK, Evidence, ExtractionContext, Feature, FeatureDef, _condition_active, _date_str, _found,
                       _missing, extractor, matches_codes)
from .units import UnitError, convert

GOAL_OPEN = {"proposed", "planned", "accepted", "active", "on-hold"}


def timed_observations(resources: Sequence[dict], codes, ctx: ExtractionContext) -> Iterator[tuple[datetime, dict]]:
    """(time, Observation) of the codes with a result status and a time not in the future."""
    for obs in R.of_type(resources, "Observation"):
        if obs.get("status") not in OBSERVATION_OK or not matches_codes(obs.get("code"), codes):
            continue
        when = R.clinical_time(obs)
        if when is not None and when <= ctx.as_of + timedelta(minutes=5):
            yield when, obs


def _within(d: FeatureDef, ctx: ExtractionContext, when: datetime) -> bool:
    days = d.param("lookback_days")
    return days is None or when >= ctx.as_of - timedelta(days=float(days))


def _too_old(d: FeatureDef, when: datetime) -> str:
    days = float(d.param("lookback_days"))
    span = f"{days * 24:g} hours" if days < 2 else f"{days:g} days"
    return f"latest result ({when.isoformat(timespec='minutes')}) is older than {span}"


def _acvpu_not_alert(obs: Mapping) -> bool | None:
    """ACVPU from the result's text: Alert → False; new Confusion, Voice, Pain, Unresponsive → True."""
    text = obs.get("valueString") if isinstance(obs.get("valueString"), str) else R.concept_text(obs.get("valueCodeableConcept"))
    t = text.strip().lower()
    if not t:
        return None
    if t in ("a", "alert") or t.startswith("alert"):
        return False
    if t in ("c", "v", "p", "u") or any(w in t for w in ("confus", "voice", "pain", "unresponsive")):
        return True
    return None


def _gcs_value(obs: Mapping) -> float | None:
    if isinstance(obs.get("valueInteger"), int):
        return float(obs["valueInteger"])
    q = obs.get("valueQuantity")
    return float(q["value"]) if isinstance(q, Mapping) and isinstance(q.get("value"), (int, float)) else None


@extractor("consciousness", params={"gcs_codes", "acvpu_codes", "lookback_days"})
def consciousness(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """1.0 when the newest ACVPU is not Alert or the newest GCS total is below 15; 0.0 when alert."""
    readings = []  # (time, not_alert, Evidence, note)
    for when, obs in timed_observations(resources, d.param("gcs_codes", ()), ctx):
        gcs = _gcs_value(obs)
        if gcs is not None and 3 <= gcs <= 15:
            readings.append((when, gcs < 15, Evidence(R.reference_of(obs), _date_str(when)), f"GCS {gcs:g}"))
    for when, obs in timed_observations(resources, d.param("acvpu_codes", ()), ctx):
        flag = _acvpu_not_alert(obs)
        if flag is not None:
            readings.append((when, flag, Evidence(R.reference_of(obs), _date_str(when)), "ACVPU " + ("not alert" if flag else "alert")))
    if not readings:
        return _missing(d, "no ACVPU or GCS recorded")
    when, not_alert, ev, note = max(readings, key=lambda t: t[0])
    if not _within(d, ctx, when):
        return _missing(d, _too_old(d, when))
    return _found(d, 1.0 if not_alert else 0.0, [ev], note=note)


def _quantity(obs: Mapping, unit: str) -> float | None:
    q = obs.get("valueQuantity")
    if not isinstance(q, Mapping) or not isinstance(q.get("value"), (int, float)):
        return None
    try:
        return convert(float(q["value"]), q.get("code") or q.get("unit"), unit)
    except UnitError:
        return None


@extractor("supplemental_oxygen", params={"flow_codes", "fio2_codes", "lookback_days"})
def supplemental_oxygen(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """1.0 when the newest inhaled-oxygen flow is > 0 L/min or FiO2 > 21 %; 0.0 when it records air."""
    readings = []
    for when, obs in timed_observations(resources, d.param("flow_codes", ()), ctx):
        flow = _quantity(obs, "L/min")
        if flow is not None and flow >= 0:
            readings.append((when, flow > 0, obs, f"oxygen flow {flow:g} L/min"))
    for when, obs in timed_observations(resources, d.param("fio2_codes", ()), ctx):
        q = obs.get("valueQuantity") if isinstance(obs.get("valueQuantity"), Mapping) else {}
        value = q.get("value")
        if isinstance(value, (int, float)):
            pct = float(value) * 100 if float(value) <= 1.0 and (q.get("code") or q.get("unit")) != "%" else float(value)
            if 15 <= pct <= 100:
                readings.append((when, pct > 21, obs, f"FiO2 {pct:g} %"))
    if not readings:
        return _missing(d, "no inhaled oxygen flow or FiO2 recorded")
    when, on_o2, obs, note = max(readings, key=lambda t: t[0])
    if not _within(d, ctx, when):
        return _missing(d, _too_old(d, when))
    return _found(d, 1.0 if on_o2 else 0.0, [Evidence(R.reference_of(obs), _date_str(when))], note=note)


@extractor("hypercapnic_target", params={"codes", "goal_codes", "target_max"})
def hypercapnic_target(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """1.0 when NEWS2 SpO2 Scale 2 applies: an active hypercapnic respiratory failure Condition in `codes`,
    or an open Goal on an SpO2 code whose target range tops out at `target_max` % or lower (88–92 %)."""
    for c in R.of_type(resources, "Condition"):
        if matches_codes(c.get("code"), d.param("codes", ())) and _condition_active(c, ctx.as_of):
            return _found(d, 1.0, [Evidence(R.reference_of(c), _date_str(R.clinical_time(c)))],
                          note="hypercapnic respiratory failure on the problem list")
    top = float(d.param("target_max", 92))
    for g in R.of_type(resources, "Goal"):
        if g.get("lifecycleStatus") not in GOAL_OPEN:
            continue
        for t in g.get("target") or ():
            rng = t.get("detailRange") if isinstance(t, Mapping) else None
            high = (rng or {}).get("high") or {}
            if (isinstance(high.get("value"), (int, float)) and high["value"] <= top
                    and matches_codes(t.get("measure"), d.param("goal_codes", ()))):
                low = ((rng or {}).get("low") or {}).get("value")
                return _found(d, 1.0, [Evidence(R.reference_of(g), None)],
                              note=f"prescribed SpO2 target {low if low is not None else '?'}–{high['value']:g} %")
    return _found(d, 0.0, note="no hypercapnic respiratory failure or 88–92 % SpO2 target recorded: Scale 1")
