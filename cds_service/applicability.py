"""Applicability before arithmetic: is the patient in the population the service was made for?

Each `[[population]]` entry of a service file (`hooks.definitions.Criterion`) is judged on the features,
before any model runs. The answer is one of three:

- **applies**: every criterion holds (criteria declared `if_unknown = "note"` that could not be checked
  are listed, and the card says so);
- **not-applicable**: the record shows the patient is outside (a 2-year-old for NEWS2, a pregnancy); no
  score is computed, and the builder answers with a short card naming why or with none
  (`cards.on_not_applicable`);
- **undecided**: a criterion declared `if_unknown = "stop"` could not be checked, because its data was not
  available to the service or is not recorded; no score either.

A criterion that holds on data that was only partly read is not checked: "no pregnancy on the problem list"
means nothing when the problem list could not be read. A criterion declared `only_if` a flag feature (pregnancy
`only_if = "female"`) holds without being judged when the record shows that flag is 0.

Criteria declared `scope = "model"` say where the model's score is valid rather than who the service is for
(the Pooled Cohort Equations' ages 40-79 inside ascvd-10y-risk's adults 20-79): outside them, or when they
cannot be checked, no model runs (`model_applies` is false) but the service still answers; the builder says
why there is no score. The pipeline puts the result in the builder's
context; the card's `org.cdsml.prediction` extension carries it (`to_json`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from hooks.definitions import Criterion, ServiceDefinition
from models.feature_vector import Feature, FeatureVector

APPLIES, NOT_APPLICABLE, UNDECIDED = "applies", "not-applicable", "undecided"


@dataclass(frozen=True, slots=True)
class Finding:
    """A criterion that does not hold (`failed`) or could not be checked (`unknown`), with the feature and,
    when its data could not be obtained, the prefetch keys that were unavailable."""

    criterion: Criterion
    feature: Feature
    unavailable_keys: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"criterion": self.criterion.label, "feature": self.feature.name}
        if self.feature.value is not None:
            out["value"] = self.feature.value
        if self.feature.note:
            out["found"] = self.feature.note
        if self.unavailable_keys:
            out["unavailable"] = list(self.unavailable_keys)
        return out


@dataclass(frozen=True, slots=True)
class Applicability:
    status: str = APPLIES
    failed: tuple[Finding, ...] = ()  # criteria the record shows do not hold
    unknown: tuple[Finding, ...] = ()  # criteria that could not be checked (with if_unknown "stop" or "note")
    # `scope = "model"` criteria that do not hold, or could not be checked: no model runs.
    model_failed: tuple[Finding, ...] = ()
    model_unknown: tuple[Finding, ...] = ()

    @property
    def applies(self) -> bool:
        return self.status == APPLIES

    @property
    def model_applies(self) -> bool:
        """The service applies and the model's own criteria hold: a score may be computed."""
        return self.applies and not self.model_failed and not self.model_unknown

    @property
    def model_status(self) -> str:
        """Whether a score is due, judged like `status` over the service's and the model's criteria (a population
        job ranks patients by the score: outside the equations' range is "not-applicable" for it)."""
        if not self.applies:
            return self.status
        return NOT_APPLICABLE if self.model_failed else UNDECIDED if self.model_unknown else APPLIES

    @property
    def unchecked(self) -> tuple[Finding, ...]:
        """Criteria declared `if_unknown = "note"` that could not be checked: the score stands, the card says so."""
        return tuple(f for f in self.unknown if f.criterion.if_unknown == "note")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        if self.failed:
            out["outside"] = [f.to_json() for f in self.failed]
        if self.unknown:
            out["notChecked"] = [f.to_json() for f in self.unknown]
        if self.model_failed or self.model_unknown:
            out["model"] = {k: [f.to_json() for f in v] for k, v in (("outside", self.model_failed),
                                                                    ("notChecked", self.model_unknown)) if v}
        return out


def assess(service: ServiceDefinition, features: FeatureVector, unavailable: Mapping[str, object]) -> Applicability:
    """Judge every `[[population]]` criterion of `service` (pure)."""
    failed: list[Finding] = []
    unknown: list[Finding] = []
    model_failed: list[Finding] = []
    model_unknown: list[Finding] = []
    for c in service.population:
        if c.only_if is not None and _known_false(service, features[c.only_if], unavailable):
            continue  # e.g. pregnancy for a man: holds, nothing to check
        f = features[c.feature]
        down = tuple(k for k in service.sources_of(c.feature) if k in unavailable)
        outside, not_checked = (model_failed, model_unknown) if c.scope == "model" else (failed, unknown)
        if f.value is not None and not c.holds(f.value):
            outside.append(Finding(c, f))  # the record shows it: decided, whatever else could not be read
        elif f.value is None or down:
            not_checked.append(Finding(c, f, down))
    if failed:
        status = NOT_APPLICABLE
    elif any(u.criterion.if_unknown == "stop" for u in unknown):
        status = UNDECIDED
    else:
        status = APPLIES
    return Applicability(status, tuple(failed), tuple(unknown), tuple(model_failed), tuple(model_unknown))


def _known_false(service: ServiceDefinition, flag: Feature, unavailable: Mapping[str, object]) -> bool:
    """The record shows the flag is 0, from data that was read."""
    return (flag.value is not None and flag.value < 0.5
            and not any(k in unavailable for k in service.sources_of(flag.name)))
