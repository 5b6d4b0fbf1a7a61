"""Feature kinds about the patient's history: how long a condition has been known (from its recorded
onset) and a premature cardiovascular disease in a first-degree relative (FamilyMemberHistory).
Pure, like every extractor in `features`.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

from . import resources as R
from .features import (
    SKEW,
    Evidence,
    ExtractionContext,
    Feature,
    FeatureDef,
    _date_str,
    _found,
    _missing,
    extractor,
    matches_codes,
)

DAYS_PER_YEAR = 365.25
NO_CONDITION = "no matching condition"  # the note of `years_since_onset` when the condition is not on record
_VOID = {"refuted", "entered-in-error"}


def _onset(c: Mapping, birth: datetime | None) -> datetime | None:
    """The recorded onset of a Condition: onsetDateTime, onsetPeriod.start, or onsetAge from the birth date.
    `recordedDate` is not an onset (a diagnosis is often recorded years after it was made)."""
    if "onsetDateTime" in c:
        return R.parse_datetime(c["onsetDateTime"])
    period = c.get("onsetPeriod")
    if isinstance(period, Mapping):
        return R.parse_datetime(period.get("start"))
    age = c.get("onsetAge")
    if isinstance(age, Mapping) and isinstance(age.get("value"), (int, float)) and birth is not None:
        years = float(age["value"]) / (12 if age.get("code") == "mo" else 1)
        return birth + timedelta(days=years * DAYS_PER_YEAR)
    return None


@extractor("years_since_onset", params={"codes"})
def years_since_onset(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """Years from the earliest recorded onset of a Condition in `codes` (any clinical status) to the hook's
    time. Missing, with the reason, when no such Condition exists or none records its onset."""
    birth = R.parse_datetime((ctx.patient or {}).get("birthDate"))
    codes, latest_ok = d.codes(), ctx.as_of + SKEW
    found, undated = [], []
    for c in R.of_type(resources, "Condition"):
        if not codes.matches(c.get("code")):
            continue
        verification = {code for _, code, _ in R.codings(c.get("verificationStatus"))}
        if verification & _VOID:
            continue
        onset = _onset(c, birth)
        if onset is None or onset > latest_ok:
            undated.append(c)
        else:
            found.append((onset, c))
    if not found:
        if undated:
            recorded = _date_str(R.parse_datetime(undated[0].get("recordedDate")))
            return _missing(d, "onset not recorded" + (f" (recorded {recorded})" if recorded else ""))
        return _missing(d, NO_CONDITION)
    onset, c = min(found, key=lambda t: t[0])
    years = (ctx.as_of - onset) / timedelta(days=DAYS_PER_YEAR)
    return _found(d, round(years, 2), [Evidence(R.reference_of(c), _date_str(onset))], note=f"onset {_date_str(onset)}")


# First-degree relatives (HL7 v3 RoleCode), with the sex the relationship implies when `sex` is absent.
FIRST_DEGREE = {"FTH": "male", "NFTH": "male", "MTH": "female", "NMTH": "female", "PRN": None, "NPRN": None,
                "BRO": "male", "NBRO": "male", "SIS": "female", "NSIS": "female", "SIB": None, "NSIB": None,
                "TWIN": None, "TWINBRO": "male", "TWINSIS": "female", "SON": "male", "SONC": "male",
                "DAU": "female", "DAUC": "female", "CHILD": None, "NCHILD": None}


def _check_family(params: Mapping[str, Any]) -> str | None:
    ages = params.get("premature_age")
    if not (isinstance(ages, Mapping) and all(isinstance(ages.get(s), (int, float)) for s in ("male", "female"))):
        return "premature_age must give a male and a female age in years"
    return None


def _onset_years(cond: Mapping) -> float | None:
    age = cond.get("onsetAge")
    if isinstance(age, Mapping) and isinstance(age.get("value"), (int, float)):
        return float(age["value"]) / (12 if age.get("code") == "mo" else 1)
    rng = cond.get("onsetRange")
    if isinstance(rng, Mapping) and isinstance((rng.get("high") or {}).get("value"), (int, float)):
        return float(rng["high"]["value"])  # the whole range must lie below the limit
    return None


@extractor("family_history", params={"codes", "premature_age"}, check=_check_family)
def family_history(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """1.0 when a FamilyMemberHistory of a first-degree relative records a condition in `codes` with an
    onset age below `premature_age` for the relative's sex (e.g. male < 55, female < 65), else 0.0.

    A matching condition without an onset age is not counted as premature; it is named in the note."""
    limits = d.param("premature_age", {})
    undated = []
    for h in R.of_type(resources, "FamilyMemberHistory"):
        if h.get("status") == "entered-in-error":
            continue
        roles = [c for _, c, _ in R.codings(h.get("relationship"))]
        role = next((r for r in roles if r in FIRST_DEGREE), None)
        if role is None:
            continue
        sex = (h.get("sex") or {}).get("coding", [{}])[0].get("code") if isinstance(h.get("sex"), Mapping) else None
        sex = sex if sex in ("male", "female") else FIRST_DEGREE[role]
        for cond in h.get("condition") or ():
            if not isinstance(cond, Mapping) or not matches_codes(cond.get("code"), d.codes()):
                continue
            years = _onset_years(cond)
            limit = limits.get(sex) if sex else min(limits.values())
            if years is not None and years < limit:
                return _found(d, 1.0, [Evidence(R.reference_of(h), _date_str(R.parse_datetime(h.get("date"))))],
                              note=f"{role} at age {years:g}")
            if years is None:
                undated.append(role)
    note = "no premature ASCVD in a first-degree relative recorded"
    if undated:
        note += f" (onset age not recorded for: {', '.join(sorted(set(undated)))})"
    return _found(d, 0.0, note=note)


__all__ = ["years_since_onset", "family_history"]
