"""UCUM unit conversion through pint, with per-analyte factors where chemistry decides.

Dimensional arithmetic (lb ↔ kg, in ↔ cm, °F ↔ °C, g/L ↔ mg/dL, 10*3/uL ↔ 10*9/L) is pint's;
this module only translates UCUM codes into pint expressions. Mass ↔ molar concentration depends on
the analyte, so a feature declares it, either by name (`analyte = "cholesterol"`, factors below) or
with explicit factors (`per_unit = {"mmol/L" = 0.02586}`: how many of that unit make one target
unit). Creatinine uses the clinical 88.42 µmol/L per mg/dL (CKD-EPI 2021), not a molar mass.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable, Mapping

# mg/dL per mmol/L (= molar mass in g/mol / 10), for `analyte = "<name>"`.
ANALYTE_MG_DL_PER_MMOL_L = {
    "glucose": 18.016,        # C6H12O6, 180.16 g/mol
    "cholesterol": 38.665,    # total, HDL, LDL, non-HDL: 386.65 g/mol
    "triglycerides": 88.57,   # as triolein, 885.7 g/mol (the laboratory convention)
    "creatinine": 1 / 0.08842,  # 1 mg/dL = 88.42 µmol/L (CKD-EPI 2021 convention)
    "urea_nitrogen": 2.8014,  # BUN: 1 mmol/L urea carries 28.014 mg of nitrogen
    "calcium": 4.008,         # 40.078 g/mol
    "uric_acid": 16.811,      # 168.11 g/mol
    "bilirubin": 58.466,      # 584.66 g/mol (1 mg/dL = 17.1 µmol/L)
}

# Whole UCUM codes (and common non-UCUM spellings EHRs send) -> pint expressions.
_UCUM_TO_PINT = {
    "mm[Hg]": "mmHg", "mmHg": "mmHg", "[lb_av]": "lb", "lb": "lb", "lbs": "lb", "[oz_av]": "oz", "[in_i]": "inch",
    "in": "inch", "[ft_i]": "foot", "Cel": "degC", "degC": "degC", "[degF]": "degF", "degF": "degF",
    "%": "percent", "{#}": "count", "{score}": "count", "1": "count", "a": "year", "mo": "month", "wk": "week",
    "d": "day", "h": "hour", "min": "minute", "s": "second", "mL/min/1.73m2": "mL/min", "beats/minute": "1/min",
    "breaths/minute": "1/min", "/min": "1/min",
}
_BRACKETS = {"[lb_av]": "lb", "[oz_av]": "oz", "[in_i]": "inch", "[ft_i]": "foot", "[degF]": "degF", "mm[Hg]": "mmHg"}
_SCALE = re.compile(r"^10[*^](-?\d+)(?:[./]|$)")
_ANNOTATION = re.compile(r"\{[^}]*\}")
_EXPONENT = re.compile(r"(?<=[A-Za-z])(-?\d+)(?![\d.*])")


# UCUM codes as a clinician writes them (the one place units become text: cards, pages, reports).
_DISPLAY = {
    "a": "years", "mo": "months", "wk": "weeks", "d": "days", "h": "h", "min": "min", "s": "s",
    "mm[Hg]": "mm Hg", "Cel": "°C", "[degF]": "°F", "[lb_av]": "lb", "[oz_av]": "oz", "[in_i]": "in", "[ft_i]": "ft",
    "1": "", "{#}": "", "{count}": "", "{score}": "points", "{points}": "points", "{ratio}": "",
    "kg/m2": "kg/m²", "mL/min/{1.73_m2}": "mL/min/1.73 m²", "mL/min/1.73m2": "mL/min/1.73 m²",
    "10*3/uL": "× 10³/µL", "10*9/L": "× 10⁹/L", "10*12/L": "× 10¹²/L", "10*6/uL": "× 10⁶/µL",
    "/min": "/min", "{beats}/min": "/min", "{breaths}/min": "/min", "beats/minute": "/min", "breaths/minute": "/min",
}
_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


@lru_cache(maxsize=1024)  # a few codes (the features' declared units) shown many times per call
def unit_text(ucum: str | None) -> str:
    """A UCUM code (or a common spelling) as a clinician reads it: 'a' → 'years', 'mm[Hg]' → 'mm Hg',
    'Cel' → '°C', '{#}' → '' (a count), 'kg/m2' → 'kg/m²', 'umol/L' → 'µmol/L'."""
    if not ucum:
        return ""
    code = ucum.strip()
    if code in _DISPLAY:
        return _DISPLAY[code]
    text = _ANNOTATION.sub("", code)  # annotations are unity: {beats}/min is /min
    for bracket, plain in (("[lb_av]", "lb"), ("[in_i]", "in"), ("[degF]", "°F"), ("mm[Hg]", "mm Hg"), ("Cel", "°C")):
        text = text.replace(bracket, plain)
    text = text.replace("[", "").replace("]", "")  # [IU]/L → IU/L
    text = re.sub(r"(?<![A-Za-z0-9*])u(?=[a-zA-Z])", "µ", text)  # umol → µmol, uL → µL
    text = re.sub(r"(?<=[A-Za-z])(-?\d+)\b", lambda m: m.group(1).translate(_SUPERSCRIPT), text)  # m2 → m²
    text = re.sub(r"10\*(-?\d+)", lambda m: "× 10" + m.group(1).translate(_SUPERSCRIPT), text)
    return text.strip(" .")


# How values are rounded wherever a clinician reads them (cards' summary and detail, explanation pages), the one
# table of it. A quantity whose precision matters clinically has fixed decimals, by feature name: serum creatinine
# 2 decimals in mg/dL (1.04 and 1.0 give different eGFRs), HbA1c 1 decimal (6.0 %, never "6 %": 6.5 % is the
# diagnostic threshold), plasma glucose whole numbers in mg/dL (fasting and 2-hour OGTT, as ADA 2026 section 2 states
# its thresholds: 126, 200). Any other value: at most one decimal, trailing zeros dropped (no decimals from 1,000 up);
# risks are shown with one decimal in % by the builders (`pct`), eGFR and CrCl as whole numbers unless rounding would
# cross the card's threshold (`renal_dosing.shown`; a laboratory value likewise, `thresholds` below). Thresholds are
# always compared with the unrounded value.
FIXED_DIGITS = {"creatinine": 2, "hba1c": 1,
                "fpg": 0, "fasting_glucose": 0, "ogtt": 0, "ogtt_2h": 0}  # diabetes-detection's and ascvd's names


def value_text(value: float, name: str = "", *, thresholds: Iterable[float] = ()) -> str:
    """A value rounded by the rule above (without its unit): `name` is the feature's name. With `thresholds` (the
    ones the value was judged against, as `>=`), up to three more decimals where the rounded value would fall on
    the other side of one: HbA1c 6.46 judged below 6.5 is '6.46', never '6.5' on a prediabetes card."""
    if name in FIXED_DIGITS:
        text = f"{value:.{FIXED_DIGITS[name]}f}"
    else:
        text = f"{value:.1f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:.0f}"
    if thresholds == ():  # most values: no threshold whose side the rounding could change
        return text
    limits = tuple(thresholds)
    digits = len(text.partition(".")[2])
    while any((float(text) >= t) != (value >= t) for t in limits) and digits < FIXED_DIGITS.get(name, 1) + 3:
        digits += 1
        text = f"{value:.{digits}f}"
    return text


class UnitError(ValueError):
    """A quantity whose unit cannot be converted to the unit the feature needs."""


@lru_cache(maxsize=1)
def _registry():
    import pint

    return pint.UnitRegistry(autoconvert_offset_to_baseunit=True)


def _key(unit: str) -> str:
    return unit.replace("μ", "u").replace("µ", "u").strip()


@lru_cache(maxsize=512)
def to_pint(ucum: str) -> tuple[float, str]:
    """(scale, pint expression) for a UCUM code: `10*3/uL` → (1000, '1/uL'), `{beats}/min` → (1, '1/min')."""
    code = _key(ucum)
    if code in _UCUM_TO_PINT:
        return 1.0, _UCUM_TO_PINT[code]
    scale = 1.0
    m = _SCALE.match(code)
    if m:
        scale = 10.0 ** int(m.group(1))
        code = code[m.end() - 1:] if code[m.end() - 1:m.end()] == "/" else code[m.end():]
    code = _ANNOTATION.sub("", code).rstrip("/.") or "1"  # UCUM annotations are unity
    for ucum_unit, pint_unit in _BRACKETS.items():
        code = code.replace(ucum_unit, pint_unit)
    code = _EXPONENT.sub(r"**\1", code).replace(".", "*")
    if code.startswith("/"):
        code = "1" + code
    if code == "Cel":
        code = "degC"
    return scale, code or "count"


@lru_cache(maxsize=512)
def _factor(src: str, dst: str) -> tuple[float, float]:
    """(scale, offset) such that dst_value = src_value * scale + offset; raises UnitError."""
    ureg = _registry()
    (s_scale, s_expr), (d_scale, d_expr) = to_pint(src), to_pint(dst)
    try:
        a = ureg.Quantity(0.0, s_expr).to(d_expr).magnitude
        b = ureg.Quantity(1.0, s_expr).to(d_expr).magnitude
    except Exception:  # pint raises several types for unknown or incompatible units
        raise UnitError(f"cannot convert {src} to {dst}") from None
    return (b - a) * s_scale / d_scale, a / d_scale


def convert(value: float, unit: str | None, target: str, per_unit: Mapping[str, float] | None = None,
            analyte: str | None = None) -> float:
    """Convert `value` in UCUM `unit` to `target`. Raises UnitError.

    Same-dimension units convert directly. Otherwise `per_unit` (explicit factors: how many of that
    unit make one `target`) or `analyte` (a name in ANALYTE_MG_DL_PER_MMOL_L) bridges mass and
    molar concentration. A missing unit is taken to be the target unit (the caller's declaration).
    """
    if unit is None or unit == "" or unit == target:  # most results are in the unit the feature declares
        return value
    src, dst = _key(unit), _key(target)
    if src == dst:
        return value
    try:
        scale, offset = _factor(src, dst)
        return value * scale + offset
    except UnitError:
        if not per_unit and not analyte:
            raise
    for name, factor in (per_unit or {}).items():
        if _key(name) == src:
            return value / factor
        try:  # e.g. mmol/L declared, umol/L sent: reach the declared unit first
            scale, offset = _factor(src, _key(name))
            return (value * scale + offset) / factor
        except UnitError:
            continue
    if analyte:
        return _via_analyte(value, src, dst, analyte)
    raise UnitError(f"cannot convert {unit} to {target}")


def _via_analyte(value: float, src: str, dst: str, analyte: str) -> float:
    if analyte not in ANALYTE_MG_DL_PER_MMOL_L:
        raise UnitError(f"unknown analyte '{analyte}' (known: {', '.join(sorted(ANALYTE_MG_DL_PER_MMOL_L))})")
    ratio = ANALYTE_MG_DL_PER_MMOL_L[analyte]
    for mid_src, mid_dst, factor in (("mg/dL", "mmol/L", 1 / ratio), ("mmol/L", "mg/dL", ratio)):
        try:
            s_scale, s_off = _factor(src, mid_src)
            d_scale, d_off = _factor(mid_dst, dst)
        except UnitError:
            continue
        return ((value * s_scale + s_off) * factor) * d_scale + d_off
    raise UnitError(f"cannot convert {src} to {dst} for {analyte}")
