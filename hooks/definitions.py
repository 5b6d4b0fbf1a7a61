"""Typed, frozen form of a service file (`hooks/<id>.toml`). Parsing and checks live in `loader`."""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from fhir_adapters.features import FeatureDef


@dataclass(frozen=True, slots=True)
class PrefetchSpec:
    query: str
    # What a failure to get this key means: "fail" → 412 (PREFETCH-5), "omit" → go on without it.
    on_error: str = "fail"


@dataclass(frozen=True, slots=True)
class Criterion:
    """A population guard: the feature must be present and inside [min, max] / equal to `equals`."""

    feature: str
    min: float | None = None
    max: float | None = None
    equals: float | None = None
    label: str = ""

    def holds(self, value: float | None) -> bool:
        if value is None:
            return False
        if self.equals is not None and value != self.equals:
            return False
        if self.min is not None and value < self.min:
            return False
        return self.max is None or value <= self.max


@dataclass(frozen=True, slots=True)
class SuggestionDef:
    """A one-click suggestion a card rule may offer (SUGG-1, ACT-1)."""

    name: str
    label: str
    resource_type: str  # ServiceRequest or MedicationRequest
    code: str  # "system|code"
    display: str
    text: str = ""  # dosage text for a medication, a note for a referral
    category: str | None = None  # "system|code" of the ServiceRequest category
    unless: str | None = None  # a feature name; the suggestion is left out when it is 1
    recommended: bool = False


@dataclass(frozen=True, slots=True)
class CardRule:
    min_score: float
    indicator: str
    summary: str
    suggestions: tuple[str, ...] = ()
    advice: str = ""  # markdown paragraph of what to do, shown in the detail


@dataclass(frozen=True, slots=True)
class CardPolicy:
    source_label: str
    source_url: str | None = None
    rules: tuple[CardRule, ...] = ()
    on_missing: str = "card"  # "card": an info card naming what is missing; "silent": no card
    top_factors: int = 3
    override_reasons: tuple[tuple[str, str, str], ...] = ()  # (system, code, display)
    settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class ServiceDefinition:
    id: str
    hook: str
    title: str
    description: str
    prefetch: Mapping[str, PrefetchSpec]
    features: tuple[FeatureDef, ...]
    model_ref: str | None
    builder: str
    population: tuple[Criterion, ...]
    cards: CardPolicy
    suggestions: Mapping[str, SuggestionDef]
    usage_requirements: str | None = None
    path: str = ""
    # Feature name -> ("system|code", display) of the test to order when it is missing.
    orders: Mapping[str, tuple[str, str]] = field(default_factory=lambda: MappingProxyType({}))
    # Free-form, builder-specific data (thresholds, code sets, intervals), validated by the builder.
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # `[model] secondary`: models the card shows beside `model_ref`, run by the pipeline with it.
    secondary_refs: tuple[str, ...] = ()

    def discovery(self) -> dict:
        """The service's descriptor for `GET /cds-services` (DISC-4); no empty members (GEN-2, DISC-6)."""
        out: dict[str, Any] = {"hook": self.hook, "id": self.id, "title": self.title, "description": self.description}
        if self.prefetch:
            out["prefetch"] = {k: p.query for k, p in self.prefetch.items()}
        if self.usage_requirements:
            out["usageRequirements"] = self.usage_requirements
        return out
