"""What every builder receives, and the pieces cards of every service share."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from fhir_adapters.orders import MedicationOrder
from hooks.catalog import SUMMARY_MAX
from hooks.definitions import ServiceDefinition, SuggestionDef
from models.feature_vector import Feature, FeatureVector
from models.protocol import Prediction

from cds_service.cards import Action, Card, Coding, Link, Source, Suggestion, stable_uuid
from cds_service.builders.links import DEFAULT_KINDS, explanation_links
from cds_service.hook_request import HookRequest

PREDICTION_EXTENSION = "org.cdsml.prediction"
BOOLEAN_KINDS = {"sex", "race", "condition", "medication", "latest_coded",
                 "medication_with_drafts", "consciousness", "supplemental_oxygen", "hypercapnic_target",
                 "ethnicity", "any"}


@dataclass(frozen=True, slots=True)
class BuildContext:
    service: ServiceDefinition
    request: HookRequest
    features: FeatureVector
    model: Any | None
    prediction: Prediction | None
    # Prefetch keys whose data could not be obtained, with the reason (policy "omit").
    unavailable: Mapping[str, str] = field(default_factory=dict)
    # Absolute base URL of this service for links (explanation page), when known.
    base_url: str | None = None
    # Which explanation links cards carry (`ui_explain_links`): "smart" and/or "absolute".
    link_kinds: tuple[str, ...] = DEFAULT_KINDS
    # Predictions of the `[model] secondary` models, by ref (None: not calculated, an input missing).
    secondary: Mapping[str, Prediction | None] = field(default_factory=dict)

    def card_uuid(self, key: str) -> str:
        return stable_uuid(self.request.hook_instance, self.service.id, key)

    def suggestion_uuid(self, *key: str) -> str:
        return stable_uuid(self.request.hook_instance, self.service.id, "suggestion", *key)

    def source(self) -> Source:
        return Source(self.service.cards.source_label, self.service.cards.source_url)

    def override_reasons(self) -> tuple[Coding, ...]:
        return tuple(Coding(s, c, d) for s, c, d in self.service.cards.override_reasons)


def number(value: float, digits: int = 1) -> str:
    """A number as a card shows it: at most `digits` decimals, trailing zeros dropped (44.50 → 44.5, 30.0 → 30)."""
    return f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"


def display_value(ctx: BuildContext, f: Feature) -> str:
    """A feature's value as a clinician reads it: 'yes'/'no' for flags, value with unit otherwise."""
    if f.value is None:
        return "missing"
    kind = next((d.kind for d in ctx.service.features if d.name == f.name), "")
    if kind in BOOLEAN_KINDS:
        return "yes" if f.value >= 0.5 else "no"
    text = number(f.value, 1 if abs(f.value) < 1000 else 0)
    unit = {"a": "years", "mm[Hg]": "mm Hg", "d": "days", "{#}": "", None: ""}.get(f.unit, f.unit)
    return f"{text} {unit}".strip()


def unavailable_sources(ctx: BuildContext, *names: str) -> list[str]:
    """The prefetch keys feeding these features whose data could not be obtained: what they say is "not
    available to the service", never "not recorded"."""
    keys = [key for d in ctx.service.features if d.name in names for key in d.source]
    return sorted({key for key in keys if key in ctx.unavailable})


def inputs_table(ctx: BuildContext, names) -> str:
    rows = ["| Input | Value | Date |", "| --- | --- | --- |"]
    for name in names:
        f = ctx.features[name]
        value = display_value(ctx, f)
        if f.imputed:
            value += " (default)"
        rows.append(f"| {f.label} | {value} | {f.date or '-'} |")
    return "\n".join(rows)


def prediction_json(p: Prediction) -> dict:
    """One prediction as the card extension carries it: the exact numbers, rounded to 6 decimals."""
    body: dict[str, Any] = {"model": p.model, "version": p.version, "score": round(p.score, 6),
                            "linearPredictor": round(p.linear_predictor, 6), "baseline": round(p.baseline, 6),
                            "contributions": {k: round(v, 6) for k, v in p.contributions.items()}}
    body.update({k: v for k, v in p.details.items() if v not in (None, "", [], {})})
    return body


def prediction_extension(ctx: BuildContext, names=None) -> dict:
    """The card's `extension` member holding the exact numbers behind it (traceability)."""
    feats = ctx.features.to_json()
    if names is not None:
        feats = {k: v for k, v in feats.items() if k in names}
    body: dict[str, Any] = {"features": feats}
    if ctx.prediction is not None:
        body.update(prediction_json(ctx.prediction))
    if ctx.unavailable:
        body["unavailable"] = dict(ctx.unavailable)
    return {PREDICTION_EXTENSION: body}


def order_suggestion(ctx: BuildContext, key: str, label: str, code: str, display: str, *, resource_type: str = "ServiceRequest",
                     text: str = "", category: str | None = None, recommended: bool | None = None) -> Suggestion:
    """A suggestion that creates one draft order for this patient (SUGG-1, ACT-1)."""
    system, _, value = code.partition("|")
    patient = {"reference": f"Patient/{ctx.request.patient_id}"}
    concept = {"coding": [{"system": system, "code": value, "display": display}], "text": display}
    user = ctx.request.context.get("userId", "")
    if resource_type == "MedicationRequest":
        resource: dict[str, Any] = {"resourceType": "MedicationRequest", "status": "draft", "intent": "order",
                                    "medicationCodeableConcept": concept, "subject": patient}
        if text:
            resource["dosageInstruction"] = [{"text": text}]
    else:
        resource = {"resourceType": "ServiceRequest", "status": "draft", "intent": "order", "code": concept, "subject": patient}
        cat_system, _, cat_code = (category or "http://snomed.info/sct|108252007").partition("|")
        resource["category"] = [{"coding": [{"system": cat_system, "code": cat_code}]}]
        if text:
            resource["note"] = [{"text": text}]
    if ctx.request.encounter_id:
        resource["encounter"] = {"reference": f"Encounter/{ctx.request.encounter_id}"}
    if user.split("/")[0] in ("Practitioner", "PractitionerRole"):
        resource["requester"] = {"reference": user}
    action = Action("create", f"Create a draft {resource_type} for {display}", resource=resource)
    return Suggestion(label, ctx.suggestion_uuid(key), (action,), recommended)


def declared_suggestion(ctx: BuildContext, s: SuggestionDef) -> Suggestion:
    return order_suggestion(ctx, s.name, s.label, s.code, s.display, resource_type=s.resource_type, text=s.text,
                            category=s.category, recommended=True if s.recommended else None)


def explanation_link(ctx: BuildContext) -> tuple[Link, ...]:
    """Links to the explanation page of this card: `smart` and/or `absolute`, as `ui_explain_links` says."""
    if not ctx.base_url:
        return ()
    return explanation_links(ctx.base_url, ctx.service.id, ctx.request.hook_instance, ctx.link_kinds)


def remove_order(ctx: BuildContext, order: MedicationOrder, label: str, *, key: tuple[str, ...] = (),
                 recommended: bool | None = None) -> Suggestion:
    """A suggestion that removes a draft order of this session: `delete` names it by `resourceId` and
    carries no resource (ACT-1, invariant cds-resp-2). `key` tells apart several suggestions for one order."""
    action = Action("delete", f"Remove the order {order.reference} ({order.text})", resource_id=order.reference)
    return Suggestion(label, ctx.suggestion_uuid(order.reference, *key), (action,), recommended)


def card(ctx: BuildContext, key: str, summary: str, indicator: str, detail: str, *, source: Source | None = None,
         suggestions: Iterable[Suggestion] = (), selection_behavior: str = "any", extension: dict | None = None) -> Card:
    """The one card factory: the service's source (or the rule's own), a stable uuid, the override reasons,
    and a link to the explanation page whenever a prediction stands behind the card."""
    suggestions = tuple(suggestions)
    links = explanation_link(ctx) if ctx.prediction is not None else ()
    return Card(summary=shorten(summary), indicator=indicator, source=source or ctx.source(), uuid=ctx.card_uuid(key),
                detail=detail, suggestions=suggestions, selection_behavior=selection_behavior if suggestions else None,
                override_reasons=ctx.override_reasons(), links=links, extension=extension)


def shorten(text: str) -> str:
    """CARD-2 guard for texts built from record data (drug names): cut at a word, mark with an ellipsis."""
    if len(text) <= SUMMARY_MAX:
        return text
    return text[: SUMMARY_MAX - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"
