"""UCUM unit conversion through pint, with per-analyte factors where chemistry decides.

Mass ↔ molar concentration depends on the analyte, so a feature declares its factor, e.g.
cholesterol `per_unit = {"mmol/L" = 0.02586}` (1 mg/dL = 0.02586 mmol/L) or creatinine
`{"umol/L" = 88.42}` (1 mg/dL = 88.42 µmol/L, CKD-EPI 2021). Everything else (lb ↔ kg,
in ↔ cm, °F ↔ °C, g/L ↔ mg/dL) is pint's dimensional arithmetic.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Mapping

# UCUM codes -> pint expressions for the units EHRs send for our analytes and vitals.
_UCUM_TO_PINT = {
    "mm[Hg]": "mmHg",
    "[lb_av]": "lb",
    "lb": "lb",
    "[in_i]": "inch",
    "in": "inch",
    "Cel": "degC",
    "[degF]": "degF",
    "degF": "degF",
    "kg/m2": "kg/m**2",
    "/min": "1/min",
    "{beats}/min": "1/min",
    "{breaths}/min": "1/min",
    "%": "percent",
    "{#}": "count",
    "{score}": "count",
    "1": "count",
    "a": "year",
    "L/min": "L/min",
    "mL/min/{1.73_m2}": "mL/min",
    "mL/min/1.73m2": "mL/min",
    "umol/L": "umol/L",
    "µmol/L": "umol/L",
    "mg/dL": "mg/dL",
    "mmol/L": "mmol/L",
    "g/L": "g/L",
    "g/dL": "g/dL",
    "kg": "kg",
    "g": "g",
    "cm": "cm",
    "m": "m",
}


class UnitError(ValueError):
    """A quantity whose unit cannot be converted to the unit the feature needs."""


@lru_cache(maxsize=1)
def _registry():
    import pint

    return pint.UnitRegistry(autoconvert_offset_to_baseunit=True)


def _key(unit: str) -> str:
    return unit.replace("μ", "u").replace("µ", "u").strip()


@lru_cache(maxsize=512)
def _factor(src: str, dst: str) -> tuple[float, float]:
    """(scale, offset) such that dst_value = src_value * scale + offset; raises UnitError."""
    ureg = _registry()
    try:
        a = ureg.Quantity(0.0, _UCUM_TO_PINT.get(src, src)).to(_UCUM_TO_PINT.get(dst, dst)).magnitude
        b = ureg.Quantity(1.0, _UCUM_TO_PINT.get(src, src)).to(_UCUM_TO_PINT.get(dst, dst)).magnitude
    except Exception:  # pint raises several types for unknown or incompatible units
        raise UnitError(f"cannot convert {src} to {dst}") from None
    return b - a, a


def convert(value: float, unit: str | None, target: str, per_unit: Mapping[str, float] | None = None) -> float:
    """Convert `value` in UCUM `unit` to `target`.

    `per_unit` maps a unit to how many of it make one `target` (analyte-specific factors);
    a value in such a unit is first divided by its factor. A missing unit is accepted only when
    the target is dimensionless or the caller's data is known to be in the target unit.
    """
    if unit is None or unit == "":
        return value
    src = _key(unit)
    dst = _key(target)
    if src == dst:
        return value
    for name, factor in (per_unit or {}).items():
        if _key(name) == src:
            return value / factor
        try:  # e.g. mmol/L declared, mol/L sent: reach the declared unit first
            scale, offset = _factor(src, _key(name))
            return (value * scale + offset) / factor
        except UnitError:
            continue
    scale, offset = _factor(src, dst)
    return value * scale + offset
