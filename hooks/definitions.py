"""Typed, frozen form of a service file (`hooks/<id>.toml`). Parsing and checks live in `loader`."""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Hashable, Mapping

from fhir_adapters.features import FeatureDef
from fhir_adapters.observation_sets import ObservationSetDef


@dataclass(frozen=True, slots=True)
class PrefetchSpec:
    query: str
    # What a failure to get this key means: "fail" → 412 (PREFETCH-5), "omit" → go on without it.
    on_error: str = "fail"


@dataclass(frozen=True, slots=True)
class Criterion:
    """One `[[population]]` entry: who the service is for. The feature must be present and inside
    [min, max] / equal to `equals`. `cds_service.applicability` judges it before any model runs."""

    feature: str
    min: float | None = None
    max: float | None = None
    equals: float | None = None
    label: str = ""
    # The card's summary when the patient is outside ({value}: the feature as shown; {detail}: what the
    # record shows, e.g. "ambulatory (AMB)"), and what to use instead (a sentence for the card's detail).
    not_applicable: str | None = None
    instead: str | None = None
    # When the data to decide is unavailable or not recorded: "stop" (no score; the card says what could
    # not be checked) or "note" (the score is given and the card says this could not be checked).
    if_unknown: str = "stop"
    # The card's summary when the criterion could not be checked and `if_unknown = "stop"` ({why}).
    unknown: str | None = None
    # "card" or "silent" for this criterion; None: the service's `cards.on_not_applicable`.
    on_not_applicable: str | None = None
    # A flag feature the criterion depends on (e.g. "female" for a pregnancy): when the record shows it is 0,
    # the criterion holds without being judged (a man is never "pregnancy not checked").
    only_if: str | None = None
    # "service": who the service is for; "model": where the model's score is valid. Outside a "model" criterion
    # no model runs, but the service still answers (its builder says why there is no score), e.g. the Pooled
    # Cohort Equations' ages 40-79 inside ascvd-10y-risk's adults 20-79.
    scope: str = "service"

    def holds(self, value: float | None) -> bool:
        if value is None:
            return False
        if self.equals is not None and value != self.equals:
            return False
        if self.min is not None and value < self.min:
            return False
        return self.max is None or value <= self.max


@dataclass(frozen=True, slots=True)
class OrderDef:
    """A test a card can order: the code the EHR orders by, its display as the code system names it (it stays in the
    coding), and `name`, the test as a clinician reads it on the button and in the order's text ("HbA1c", not the
    LOINC long name "Hemoglobin A1c/Hemoglobin.total in Blood"). Declared next to the code in the service file."""

    code: str  # "system|code"
    display: str
    name: str

    @classmethod
    def parse(cls, raw: Any, where: str) -> "OrderDef":
        """The order declared at `where` (`{ code, display, name }`); ValueError naming the field otherwise."""
        if not isinstance(raw, Mapping) or "|" not in str(raw.get("code", "")) or not raw.get("display"):
            raise ValueError(f"{where} needs code = 'system|code' and a display")
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 60:
            raise ValueError(f"{where}.name is required (at most 60 characters): the test as a clinician names it on "
                             "the order button, e.g. 'HbA1c' (the display is the code system's long name)")
        return cls(raw["code"], raw["display"], name.strip())


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
    order_name: str = ""  # `name` in the file: the test as a clinician reads it in the order ("lipid panel"); display otherwise
    # A medication: `code` is the RxNorm clinical drug (SCD) an EHR orders, `ingredient` ("system|code", display) its
    # ingredient, `dose` the structured dosage (`Dose`); checked at start-up (`hooks.loader`).
    ingredient: tuple[str, str] | None = None
    dose: "Dose | None" = None


# Routes a suggestion may declare, as SNOMED CT route-of-administration concepts (the R4 `Dosage.route` example set).
ROUTES = {"oral": ("26643006", "Oral route")}


@dataclass(frozen=True, slots=True)
class Dose:
    """A structured dosage: `value` `unit` (UCUM) per administration, `times_per_day` times a day, by `route`."""

    value: float
    unit: str
    times_per_day: int
    route: str


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
    # Outside `[[population]]`: "card" (a short info card naming why, never a score) or "silent" (no card).
    on_not_applicable: str = "silent"


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """`[alerts]`: which of the service's cards a clinician sees (`cds_service.alerts` applies it).

    `mode`: "live" (cards returned) or "shadow" (computed and recorded, never returned). A card is held
    back when it repeats exactly (same kind, indicator, summary and suggested actions) a card shown to
    the same user for the same patient by this service within `repeat_window_s[indicator]` seconds (0:
    never held back); when it is an info card of a kind listed in `silent_info` that suggests no action;
    or while a snooze holds:
    an override with one of `snooze_reasons` ("system|code") silences that kind for the patient for
    `snooze_days`, unless a later card is more severe or suggests another action."""

    mode: str = "live"
    # Services naming the same history share it: a card one of them showed is a repeat for the others
    # (renal-dosing-select at order-select, renal-dosing at order-sign). "": the service's own id.
    history: str = ""
    repeat_window_s: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    silent_info: tuple[str, ...] = ()
    snooze_reasons: tuple[str, ...] = ()
    snooze_days: float = 0.0

    def window_s(self, indicator: str) -> int:
        return self.repeat_window_s.get(indicator, 0)


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
    # Feature name -> the test to order when it is missing.
    orders: Mapping[str, OrderDef] = field(default_factory=lambda: MappingProxyType({}))
    # Free-form, builder-specific data (thresholds, code sets, intervals), validated by the builder.
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # `[model] secondary`: models the card shows beside `model_ref`, run by the pipeline with it.
    secondary_refs: tuple[str, ...] = ()
    # `[observation_sets.<name>]`: observations taken together, chosen from a prefetch key (NEWS2's one set).
    observation_sets: tuple[ObservationSetDef, ...] = ()
    alerts: AlertPolicy = field(default_factory=AlertPolicy)
    # Values derived from the declarations above, computed on first use and kept (`derived`).
    _derived: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def derived(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """`compute()` once per definition: what a call would otherwise work out again from declarations
        that never change (the builders' parsed `data`, each feature's sources). Never patient data."""
        try:
            return self._derived[key]
        except KeyError:
            value = self._derived[key] = compute()
            return value

    def feature(self, name: str) -> FeatureDef | None:
        """The declared feature of that name (the first, as a scan would find it), or None."""
        by_name = self._derived.get("features_by_name")
        if by_name is None:
            by_name = self.derived("features_by_name", lambda: {d.name: d for d in reversed(self.features)})
        return by_name.get(name)

    def sources_of(self, feature: str) -> tuple[str, ...]:
        """The prefetch keys a feature's value depends on: its declared `source` (an observation set stands
        for the key it is chosen from); a feature read from the Patient alone (age, sex) without a declared
        source depends on the service's Patient reads."""
        return self.derived(("sources_of", feature), lambda: self._sources_of(feature))

    def _sources_of(self, feature: str) -> tuple[str, ...]:
        d = next(f for f in self.features if f.name == feature)
        sets = {s.name: s.source for s in self.observation_sets}
        if d.kind == "observation_set":
            return (sets[d.param("set")],)
        if d.source:
            return tuple(dict.fromkeys(sets.get(k, k) for k in d.source))
        return tuple(k for k, p in self.prefetch.items() if p.query.startswith("Patient/"))

    def discovery(self) -> dict:
        """The service's descriptor for `GET /cds-services` (DISC-4); no empty members (GEN-2, DISC-6)."""
        out: dict[str, Any] = {"hook": self.hook, "id": self.id, "title": self.title, "description": self.description}
        if self.prefetch:
            out["prefetch"] = {k: p.query for k, p in self.prefetch.items()}
        if self.usage_requirements:
            out["usageRequirements"] = self.usage_requirements
        return out
