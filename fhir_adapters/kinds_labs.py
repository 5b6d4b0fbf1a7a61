"""Feature kinds over laboratory series: time in therapeutic range, ratio to the upper limit of
normal, and the age of the latest result (care gaps)."""
from __future__ import annotations

from datetime import timedelta
from typing import Mapping, Sequence

from . import resources as R
from .features import Evidence, ExtractionContext, Feature, FeatureDef, _date_str, _found, _missing, extractor
from .kinds_vitals import _within, timed_observations
from .units import UnitError, convert


def _value(obs: Mapping) -> tuple[float, str | None] | None:
    q = R.element(obs.get("valueQuantity"))
    number = R.read_number(q.get("value"))[0]  # NaN/Infinity: no value
    return (number, q.get("code") or q.get("unit")) if number is not None else None


def rosendaal_ttr(series: Sequence[tuple[float, float]], low: float, high: float, max_gap_days: float) -> tuple[float, float] | None:
    """Percent of days in [low, high] by linear interpolation between results (Rosendaal 1993).

    `series` is (day, value) in time order. Gaps longer than `max_gap_days` are not interpolated.
    Returns (percent in range, days covered), or None when no interval is usable.
    """
    covered = in_range = 0.0
    for (t0, v0), (t1, v1) in zip(series, series[1:]):
        days = t1 - t0
        if days <= 0 or days > max_gap_days:
            continue
        if v0 == v1:
            frac = 1.0 if low <= v0 <= high else 0.0
        else:
            a, b = sorted(((low - v0) / (v1 - v0), (high - v0) / (v1 - v0)))
            frac = max(0.0, min(1.0, b) - max(0.0, a))
        covered += days
        in_range += frac * days
    return (100.0 * in_range / covered, covered) if covered > 0 else None


def _check_ttr(params: Mapping) -> str | None:
    rng = params.get("range", (2.0, 3.0))
    if not (isinstance(rng, (list, tuple)) and len(rng) == 2 and all(isinstance(v, (int, float)) for v in rng) and rng[0] < rng[1]):
        return "range must be [low, high] INR values with low < high"
    return None


@extractor("inr_ttr", params={"codes", "lookback_days", "range", "max_gap_days"}, check=_check_ttr)
def inr_ttr(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """Time in therapeutic INR range (%), from the INR results inside the window (Rosendaal)."""
    points = []
    for when, obs in timed_observations(resources, d.codes(), ctx):
        v = _value(obs)
        if v is not None and 0.5 <= v[0] <= 20 and _within(d, ctx, when):
            points.append((when, v[0], Evidence(R.reference_of(obs), _date_str(when))))
    points.sort(key=lambda p: p[0])
    low, high = d.param("range", (2.0, 3.0))
    result = None
    if len(points) >= 2:
        t0 = points[0][0]
        result = rosendaal_ttr([((p[0] - t0).total_seconds() / 86400, p[1]) for p in points], float(low), float(high),
                               float(d.param("max_gap_days", 56)))
    if result is None:
        return _missing(d, "fewer than two INR results close enough in time to compute a time in range (relevant to warfarin only)")
    pct, days = result
    return _found(d, round(pct, 1), [p[2] for p in reversed(points)],
                  note=f"{len(points)} INR results over {days:.0f} days, target {low:g}–{high:g} (Rosendaal interpolation)")


def _check_uln(params: Mapping) -> str | None:
    uln = params.get("uln", {})
    if not isinstance(uln, Mapping):
        return "uln must be a table of \"system|code\" = [limit, \"unit\"]"
    for code, limit in uln.items():
        if code not in params.get("codes", ()):
            return f"uln names {code}, which is not one of codes"
        if not (isinstance(limit, (list, tuple)) and len(limit) == 2 and isinstance(limit[0], (int, float)) and limit[0] > 0
                and isinstance(limit[1], str)):
            return f"uln for {code} must be [limit > 0, \"UCUM unit\"]"
    return None


@extractor("uln_ratio", params={"codes", "lookback_days", "uln", "per_unit"}, check=_check_uln)
def uln_ratio(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """The highest (latest value ÷ upper limit of normal) among `codes` inside the window.

    The ULN is the result's own `referenceRange.high` when it has one in the same unit, else the
    declared `uln = {"system|code" = [value, "unit"]}` (a typical adult laboratory limit).
    """
    declared: Mapping = d.param("uln", {})
    best, notes = None, []
    for spec in d.param("codes", ()):
        latest = max(timed_observations(resources, [spec], ctx), key=lambda t: t[0], default=None)
        if latest is None or not _within(d, ctx, latest[0]):
            continue
        when, obs = latest
        v = _value(obs)
        if v is None:
            continue
        value, unit = v
        unit = "U/L" if unit in ("IU/L", "[IU]/L") else unit
        uln = None
        for rr in obs.get("referenceRange") or ():
            high = R.element(R.element(rr).get("high"))
            limit = R.read_number(high.get("value"))[0]
            if limit is not None and limit > 0:
                if (high.get("code") or high.get("unit") or unit) == unit:
                    uln = limit
                    break
        if uln is None and spec in declared:
            limit, limit_unit = declared[spec]
            try:
                value = convert(value, unit, limit_unit, d.param("per_unit"))
            except UnitError:
                continue
            uln = float(limit)
        if uln is None:
            continue
        ratio = value / uln
        notes.append(f"{spec.partition('|')[2]} {ratio:.1f}× ULN")
        if best is None or ratio > best[0]:
            best = (ratio, Evidence(R.reference_of(obs), _date_str(when)))
    if best is None:
        return _missing(d, "no recent result with an upper limit of normal")
    return _found(d, round(best[0], 2), [best[1]], note="; ".join(notes))


@extractor("days_since_latest", params={"codes"})
def days_since_latest(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """Days from the newest result of any of `codes` (any value type) to the hook's time; missing if none."""
    latest = max(timed_observations(resources, d.codes(), ctx), key=lambda t: t[0], default=None)
    if latest is None:
        return _missing(d, "no result on record")
    when, obs = latest
    days = max(0.0, (ctx.as_of - when) / timedelta(days=1))
    return _found(d, round(days, 1), [Evidence(R.reference_of(obs), _date_str(when))])
