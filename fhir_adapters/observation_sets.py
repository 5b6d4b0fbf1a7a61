"""Observations taken together: one set chosen from a prefetch key, never the latest of each code.

An early-warning score is computed on one set of observations taken at the bedside at one time (RCP
NEWS2 2017, section "NEWS2 ... parameters" and chart 3: each column of the chart is one set). Taking the
newest value of each vital sign separately mixes a respiration rate of this morning with a blood pressure
of last night into a "set" nobody measured. A service file declares a set:

    [observation_sets.vital_set]
    source = "vitals"                 # the prefetch key it is chosen from
    codes = ["http://loinc.org|9279-1", ...]
    panel_codes = ["http://loinc.org|85353-1"]   # panels whose `hasMember` group a set
    tolerance_minutes = 15
    lookback_days = 1

and features read `source = "vital_set"` as if it were a prefetch key. The set is the newest: its anchor
is the newest time among the observations of `codes` (or panels) inside the lookback, and it holds every
such observation taken up to `tolerance_minutes` before the anchor, plus the members of a panel among them.
Older observations belong to other sets and are left out (the set-time feature counts them).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Mapping, Sequence

from . import resources as R
from .features import (
    OBSERVATION_OK,
    SKEW,
    Evidence,
    ExtractionContext,
    Feature,
    FeatureDef,
    _found,
    _missing,
    extractor,
    matches_codes,
    shown_time,
)


@dataclass(frozen=True, slots=True)
class ObservationSetDef:
    """`[observation_sets.<name>]` of a service file."""

    name: str
    source: str
    codes: tuple[str, ...]
    tolerance_minutes: float = 15.0
    lookback_days: float = 1.0
    panel_codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ObservationSet:
    """The chosen set: its anchor time (None when nothing was recorded in the lookback), its members,
    how it was grouped ("panel" or "time"), and how many newer-than-lookback observations it left out."""

    anchor: datetime | None
    members: tuple[dict, ...] = ()
    grouped_by: str = "time"
    left_out: int = 0


def _places(obs: Mapping, codes: Sequence[str]) -> bool:
    if matches_codes(obs.get("code"), codes):
        return True
    return any(isinstance(c, dict) and matches_codes(c.get("code"), codes) for c in obs.get("component") or ())


def choose(d: ObservationSetDef, resources: Sequence[dict], as_of: datetime) -> ObservationSet:
    """The newest set of `d` among `resources` at `as_of` (pure)."""
    since = as_of - timedelta(days=d.lookback_days)
    timed: list[tuple[datetime, dict, bool]] = []  # (time, observation, is_panel)
    for obs in R.of_type(resources, "Observation"):
        if obs.get("status") not in OBSERVATION_OK:
            continue
        is_panel = bool(d.panel_codes) and matches_codes(obs.get("code"), d.panel_codes) and bool(obs.get("hasMember"))
        if not is_panel and not _places(obs, d.codes):
            continue
        when = R.clinical_time(obs)
        if when is None or when > as_of + SKEW or when < since:
            continue
        timed.append((when, obs, is_panel))
    if not timed:
        return ObservationSet(None)
    anchor = max(t for t, _, _ in timed)
    start = anchor - timedelta(minutes=d.tolerance_minutes)
    chosen = {id(o): o for t, o, is_panel in timed if start <= t <= anchor and not is_panel}
    grouped_by = "time"
    by_id = {o.get("id"): o for o in R.of_type(resources, "Observation") if o.get("id")}
    for t, panel, is_panel in timed:
        if not is_panel or not (start <= t <= anchor):
            continue
        grouped_by = "panel"
        for ref in panel.get("hasMember") or ():
            target = (ref or {}).get("reference") if isinstance(ref, dict) else None
            member = by_id.get(target.rsplit("/", 1)[-1]) if isinstance(target, str) else None
            if member is not None and member.get("status") in OBSERVATION_OK and _places(member, d.codes):
                chosen[id(member)] = member
    left_out = sum(1 for _, o, is_panel in timed if not is_panel and id(o) not in chosen)
    return ObservationSet(anchor, tuple(chosen.values()), grouped_by, left_out)


def with_sets(defs: Sequence[ObservationSetDef], data: Mapping[str, Sequence[dict]],
              ctx: ExtractionContext) -> tuple[dict[str, Sequence[dict]], dict[str, ObservationSet]]:
    """The sources with each declared set added under its name, and the sets chosen (for `observation_set`)."""
    sets = {d.name: choose(d, data.get(d.source, ()), ctx.as_of) for d in defs}
    return {**data, **{name: s.members for name, s in sets.items()}}, sets


@extractor("observation_set", params={"set"})
def observation_set(d: FeatureDef, _res: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """The age of the set `set` in minutes at the hook's time; its evidence is the set's members, dated
    at the set's time. Missing when no observation of the set was recorded in its lookback."""
    chosen = ctx.sets.get(d.param("set"))
    if chosen is None or chosen.anchor is None:
        return _missing(d, "no observation recorded in the window")
    when = shown_time(chosen.anchor)
    note = f"observations taken together at {when}" + (" (one panel)" if chosen.grouped_by == "panel" else "")
    if chosen.left_out:
        note += f"; {chosen.left_out} earlier observation(s) belong to other sets and are not mixed in"
    minutes = max(0.0, (ctx.as_of - chosen.anchor).total_seconds() / 60)
    return _found(d, round(minutes), [Evidence(R.reference_of(o), when) for o in chosen.members], note)
