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
    # The card kinds it produces (the `key` of `base.card`), which a service file's `[alerts] silent_info`
    # may name. Kinds about one draft order ("<order reference>/<drug>/<action>") are not listed: they
    # are never silenced, only held back as exact repeats.
    kinds: tuple[str, ...] = ()


_APPLICABILITY = ("not-applicable", "not-checked")  # base.applicability_cards

BUILDERS: dict[str, Builder] = {
    "risk": Builder(risk.check, risk.build, ("risk", "missing", *_APPLICABILITY)),
    "ascvd": Builder(ascvd.check, ascvd.build,
                     ("risk", "missing", "secondary", "on-statin", "older", "severe-ldl", "diabetes", "low-ldl",
                      "unconfirmed-diabetes", *_APPLICABILITY)),
    "renal_dosing": Builder(renal_dosing.check, renal_dosing.build, ("renal-function-unknown", *_APPLICABILITY)),
    "af_anticoagulation": Builder(af_anticoagulation.check, af_anticoagulation.build,
                                  ("scores-missing", "af-scores", "af-combination", *_APPLICABILITY)),
    "deterioration": Builder(deterioration.check, deterioration.build, ("news2", "no-vitals", *_APPLICABILITY)),
    "care_gaps": Builder(care_gaps.check, care_gaps.build, ("care-gaps", *_APPLICABILITY)),
    "diabetes_detection": Builder(diabetes_detection.check, diabetes_detection.build,
                                  ("diabetes-range", "prediabetes-range", "normal", "labs-unavailable", "screening-due",
                                   *_APPLICABILITY)),
}

__all__ = ["BUILDERS", "Builder", "BuildContext"]
