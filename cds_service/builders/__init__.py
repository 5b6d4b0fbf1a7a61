"""Card builders: the logic that turns features and a prediction into cards.

A service file names its builder (`builder = "risk"` by default). Each builder has a `check`
(run at start-up over the service file; returns the feature names it reads) and a `build`.
Rules that are data (thresholds, code sets, intervals) stay in the service file.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from cds_service.builders import (
    af_anticoagulation,
    ascvd,
    care_gaps,
    deterioration,
    diabetes_detection,
    renal_dosing,
    risk,
)
from cds_service.builders.base import BuildContext

Check = Callable[..., set]
Build = Callable[[BuildContext], list]


@dataclass(frozen=True, slots=True)
class Builder:
    check: Check
    build: Build


BUILDERS: dict[str, Builder] = {
    "risk": Builder(risk.check, risk.build),
    "ascvd": Builder(ascvd.check, ascvd.build),
    "renal_dosing": Builder(renal_dosing.check, renal_dosing.build),
    "af_anticoagulation": Builder(af_anticoagulation.check, af_anticoagulation.build),
    "deterioration": Builder(deterioration.check, deterioration.build),
    "care_gaps": Builder(care_gaps.check, care_gaps.build),
    "diabetes_detection": Builder(diabetes_detection.check, diabetes_detection.build),
}

__all__ = ["BUILDERS", "Builder", "BuildContext"]
