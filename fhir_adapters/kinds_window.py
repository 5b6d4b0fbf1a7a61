"""General feature kinds over a time window: count, any, min, max, mean, trend, bmi.

Each is declarative in a service file and pure like the kinds in `features.py`; every value keeps
its provenance (the resources it came from, with their dates) and every value left out (implausible,
unconvertible unit) is recorded in the feature's note, never silently fed to a model.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from types import MappingProxyType
from typing import Any, Mapping, Sequence

from . import resources as R
from .features import (
    OBSERVATION_OK,
    QUANTITY_PARAMS,
    SKEW,
    Evidence,
    ExtractionContext,
    Feature,
    FeatureDef,
    _date_str,
    _found,
    _missing,
    _window,
    evidence_of,
    extractor,
    mentions,
    newest_date,
    no_value,
    observation_values,
    readings,
    rejected_note,
    since,
)
from .units import ANALYTE_MG_DL_PER_MMOL_L, convert

LOINC = "http://loinc.org"
DAYS_PER_YEAR = 365.25
_NOT_RECORDS = {"entered-in-error", "cancelled", "not-done", "revoked"}  # statuses that are not clinical facts


def _check_quantity(params: Mapping[str, Any]) -> str | None:
    plausible = params.get("plausible")
    if plausible is not None and (len(plausible) != 2 or plausible[0] > plausible[1]):
        return "plausible must be [low, high]"
    if params.get("analyte") is not None and params["analyte"] not in ANALYTE_MG_DL_PER_MMOL_L:
        return f"unknown analyte '{params['analyte']}' (known: {', '.join(sorted(ANALYTE_MG_DL_PER_MMOL_L))})"
    if params.get("lookback_days") is not None and not params["lookback_days"] > 0:
        return "lookback_days must be positive"
    return None


# ---- count / any -------------------------------------------------------------------------------------


def _when(r: Mapping) -> datetime | None:
    when = R.clinical_time(r)
    if when is not None:
        return when
    for key in ("performedDateTime", "occurrenceDateTime"):
        if key in r:
            return R.parse_datetime(r[key])
    for key in ("period", "performedPeriod"):
        if isinstance(r.get(key), dict):
            return R.parse_datetime(r[key].get("start") or r[key].get("end"))
    return None


def _concepts(r: Mapping, ctx: ExtractionContext) -> list:
    rtype = r.get("resourceType")
    if rtype == "MedicationRequest":
        return [R.medication_concept(r, ctx.all_resources)]
    if rtype == "Immunization":
        return [r.get("vaccineCode")]
    if rtype == "Encounter":
        return list(r.get("type") or ())
    concepts = [r.get("code")]
    if rtype == "Observation":
        concepts += [c.get("code") for c in r.get("component") or () if isinstance(c, dict)]
    return concepts


def _is_record(r: Mapping) -> bool:
    """Leave out what is not a clinical fact: non-result Observations, refuted Conditions, voided orders."""
    if r.get("resourceType") == "Observation":
        return r.get("status") in OBSERVATION_OK
    if r.get("resourceType") == "Condition":
        verification = {code for _, code, _ in R.codings(r.get("verificationStatus"))}
        return not verification & {"refuted", "entered-in-error"}
    return r.get("status") not in _NOT_RECORDS


def counted(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> tuple[list[Evidence], list[str]]:
    """What `count`/`any` count: coded records in the window, or plausible values in [min_value, max_value]."""
    lo, hi = d.param("min_value"), d.param("max_value")
    if lo is not None or hi is not None:
        found, rejected = observation_values(d, resources, ctx)
        hits = [ev for _, v, ev in _window(d, ctx, found) if (lo is None or v >= lo) and (hi is None or v <= hi)]
        return hits, rejected
    codes, names = d.param("codes", ()), d.param("names", ())
    matcher, start, latest_ok = d.codes(), since(d, ctx), ctx.as_of + SKEW
    # The Observations carrying one of `codes`, from the pool's index (None: codes with a prefix, names, or no
    # pool): the others are not matched one by one. Every other resource type is matched as below.
    pool = resources if isinstance(resources, R.ResourcePool) else None
    indexed = pool.observations_with(codes) if pool is not None and codes and not names else None
    coded = {id(r) for r in indexed} if indexed is not None else None
    hits = []
    # A pool of Observations alone (a laboratory search): the indexed ones are the candidates, in record order.
    candidates = indexed if indexed is not None and pool is not None and pool.only_observations() else resources
    for r in candidates:
        if coded is not None and r.get("resourceType") == "Observation":
            if id(r) not in coded:
                continue
        elif (codes or names) and not any(matcher.matches(c) or mentions(c, names) for c in _concepts(r, ctx)):
            continue
        if not _is_record(r):
            continue
        when = _when(r)
        if when is not None and when > latest_ok:
            continue  # a future-dated record is not history
        if start is not None and (when is None or when < start):
            continue  # undated records cannot be placed inside a window
        hits.append((when or datetime.min.replace(tzinfo=ctx.as_of.tzinfo), Evidence(R.reference_of(r), _date_str(when))))
    hits.sort(key=lambda t: t[0], reverse=True)
    return [ev for _, ev in hits], []


_COUNT_PARAMS = {"codes", "names", "lookback_days", "min_value", "max_value", "plausible", "per_unit", "analyte"}


@extractor("count", params=_COUNT_PARAMS, check=_check_quantity)
def count(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """How many records of `codes` (any resource type; or whose text names one of `names`) fall in the window; with `min_value`/`max_value`,
    how many plausible values of `codes` lie in that range. None recorded counts as 0."""
    hits, rejected = counted(d, resources, ctx)
    note = rejected_note(rejected) if hits else "; ".join(filter(None, ["none recorded in the window", rejected_note(rejected)]))
    return _found(d, len(hits), hits, note)


@extractor("any", params=_COUNT_PARAMS, check=_check_quantity)
def any_(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """1.0 when `count` would be at least 1, else 0.0 (evidence: the newest record)."""
    hits, rejected = counted(d, resources, ctx)
    if not hits:
        return _found(d, 0.0, (), "; ".join(filter(None, ["none recorded in the window", rejected_note(rejected)])))
    return _found(d, 1.0, hits[:1], rejected_note(rejected))


# ---- min / max / mean / trend ----------------------------------------------------------------------------


def _values(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext):
    found, rejected = observation_values(d, resources, ctx)
    return found, _window(d, ctx, found), rejected


def _extreme(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext, pick) -> Feature:
    found, rejected = readings(d, resources, ctx)
    recent = _window(d, ctx, found)
    if not recent:
        return no_value(d, newest_date(d, ctx, found), rejected)
    best = pick([v for _, v, _ in recent])
    when, _, obs = next(t for t in recent if t[1] == best)  # newest of equal values
    span = f"of {len(recent)} value{'s' if len(recent) > 1 else ''}"
    return _found(d, best, [evidence_of(d, ctx, when, obs)], "; ".join(filter(None, [span, rejected_note(rejected)])))


@extractor("min", params=QUANTITY_PARAMS, check=_check_quantity)
def minimum(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """The lowest plausible value of `codes` within the window (evidence: that result)."""
    return _extreme(d, resources, ctx, min)


@extractor("max", params=QUANTITY_PARAMS, check=_check_quantity)
def maximum(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """The highest plausible value of `codes` within the window (evidence: that result)."""
    return _extreme(d, resources, ctx, max)


@extractor("mean", params=QUANTITY_PARAMS, check=_check_quantity)
def mean(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """The mean of the plausible values of `codes` within the window (evidence: every result used)."""
    found, recent, rejected = _values(d, resources, ctx)
    if not recent:
        return no_value(d, newest_date(d, ctx, found), rejected)
    value = sum(v for _, v, _ in recent) / len(recent)
    note = f"mean of {len(recent)} value{'s' if len(recent) > 1 else ''}, {recent[-1][2].date} to {recent[0][2].date}"
    return _found(d, value, [ev for _, _, ev in recent], "; ".join(filter(None, [note, rejected_note(rejected)])))


def _check_trend(params: Mapping[str, Any]) -> str | None:
    if params.get("method", "slope_per_year") not in ("slope_per_year", "difference"):
        return "method must be 'slope_per_year' or 'difference'"
    if int(params.get("min_points", 2)) < 2:
        return "min_points must be at least 2"
    return _check_quantity(params)


@extractor("trend", params=QUANTITY_PARAMS | {"method", "min_points"}, check=_check_trend)
def trend(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """Change of `codes` over the window: least-squares slope per year (`method = "slope_per_year"`,
    the default; the feature's unit is then `<unit>/a`) or newest minus oldest (`"difference"`).
    `unit` declares the measurement's unit; `min_points` (default 2) values are needed."""
    found, recent, rejected = _values(d, resources, ctx)
    method, need = d.param("method", "slope_per_year"), int(d.param("min_points", 2))
    unit = f"{d.unit}/a" if method == "slope_per_year" and d.unit else d.unit
    points = sorted(recent, key=lambda t: t[0])
    if len(points) < need:
        note = f"{len(points)} value{'s' if len(points) != 1 else ''} in the window; {need} needed for a trend"
        return Feature(d.name, d.label or d.name, None, unit, note="; ".join(filter(None, [note, rejected_note(rejected)])))
    t0 = points[0][0]
    xs = [(t - t0).total_seconds() / 86400 / DAYS_PER_YEAR for t, _, _ in points]
    ys = [v for _, v, _ in points]
    if method == "difference":
        value = ys[-1] - ys[0]
    else:
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        if sxx == 0:
            return Feature(d.name, d.label or d.name, None, unit, note="all values share one date: no trend")
        value = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    note = f"{method.replace('_', ' ')} over {len(points)} values, {points[0][2].date} to {points[-1][2].date}"
    evidence = tuple(ev for _, _, ev in reversed(points))  # newest first, like every feature
    return Feature(d.name, d.label or d.name, float(value), unit, evidence, "; ".join(filter(None, [note, rejected_note(rejected)])))


# ---- BMI, measured or derived ---------------------------------------------------------------------------

BMI_CODES = (f"{LOINC}|39156-5",)
HEIGHT_CODES = (f"{LOINC}|8302-2",)
WEIGHT_CODES = (f"{LOINC}|29463-7",)


def _part(d: FeatureDef, codes, unit: str, plausible, days) -> FeatureDef:
    return replace(d, unit=unit, params=MappingProxyType({"codes": tuple(codes), "plausible": tuple(plausible),
                                                          "lookback_days": days}))


def _check_bmi(params: Mapping[str, Any]) -> str | None:
    for key in ("plausible", "height_plausible", "weight_plausible"):
        p = params.get(key)
        if p is not None and (len(p) != 2 or p[0] > p[1]):
            return f"{key} must be [low, high]"
    return None


@extractor("bmi", params={"codes", "height_codes", "weight_codes", "lookback_days", "height_lookback_days",
                          "plausible", "height_plausible", "weight_plausible", "order"}, check=_check_bmi)
def bmi(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """Body-mass index in kg/m2: the newest measured BMI (`codes`, default LOINC 39156-5) within
    `lookback_days`; when there is none, weight / height² from the newest weight (`weight_codes`,
    29463-7, within `lookback_days`) and the newest height (`height_codes`, 8302-2, within
    `height_lookback_days`, default: any time). Units are converted (lb, in); implausible heights
    (default outside 50-250 cm), weights (2-500 kg) and BMIs (`plausible`, default 8-150) are left out."""
    days = d.param("lookback_days")
    plausible = tuple(d.param("plausible", (8, 150)))
    measured = _part(d, d.param("codes", BMI_CODES), "kg/m2", plausible, days)
    found, rejected = observation_values(measured, resources, ctx)
    recent = _window(measured, ctx, found)
    if recent:
        return _found(d, _to_unit(d, recent[0][1]), [recent[0][2]], rejected_note(rejected))
    weight_def = _part(d, d.param("weight_codes", WEIGHT_CODES), "kg", d.param("weight_plausible", (2, 500)), days)
    height_def = _part(d, d.param("height_codes", HEIGHT_CODES), "cm", d.param("height_plausible", (50, 250)),
                       d.param("height_lookback_days"))
    w_found, w_rej = observation_values(weight_def, resources, ctx)
    h_found, h_rej = observation_values(height_def, resources, ctx)
    weights, heights = _window(weight_def, ctx, w_found), _window(height_def, ctx, h_found)
    rejected += w_rej + h_rej
    if not weights or not heights:
        lacking = " and ".join(n for n, xs in (("weight", weights), ("height", heights)) if not xs)
        return _missing(d, "; ".join(filter(None, [f"no BMI, and no {lacking} to derive it from", rejected_note(rejected)])))
    (_, kg, w_ev), (_, cm, h_ev) = weights[0], heights[0]
    value = kg / (cm / 100) ** 2
    if not plausible[0] <= value <= plausible[1]:
        return _missing(d, f"derived BMI {value:.1f} kg/m2 is outside the plausible range {plausible[0]}–{plausible[1]}")
    note = f"derived from weight {kg:g} kg ({w_ev.date}) and height {cm:g} cm ({h_ev.date})"
    return _found(d, _to_unit(d, value), [w_ev, h_ev], "; ".join(filter(None, [note, rejected_note(rejected)])))


def _to_unit(d: FeatureDef, kg_m2: float) -> float:
    return convert(kg_m2, "kg/m2", d.unit or "kg/m2")  # UnitError here is a declaration bug (→ 500)


__all__ = ["count", "any_", "minimum", "maximum", "mean", "trend", "bmi", "counted"]
