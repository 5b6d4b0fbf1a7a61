"""One invocation of a CDS service, readable in one place (architecture 2.1):
prefetch → features → applicability (the population) and missing-input checks → models (primary and
secondary) → cards. Applicability comes before arithmetic: outside the population no model runs.
Tested without Flask; the view only parses and serialises.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Mapping

from cds_service.applicability import assess
from cds_service.builders import BuildContext, Builder
from cds_service.builders.links import DEFAULT_KINDS
from cds_service.cards import CdsResponse
from cds_service.errors import ModelError
from cds_service.hook_request import HookRequest
from cds_service.no_card import explain_no_card
from cds_service.prefetch import Fetcher, resolve_prefetch
from fhir_adapters.features import ExtractionContext, extract
from fhir_adapters.observation_sets import with_sets
from fhir_adapters.resources import about_another_patient
from hooks.definitions import ServiceDefinition
from models.protocol import Prediction


@dataclass(frozen=True, slots=True)
class BoundService:
    """A service definition with its loaded models and card builder."""

    definition: ServiceDefinition
    model: Any | None
    builder: Builder
    # `[model] secondary`, by ref: run beside the model for the card (e.g. qSOFA beside NEWS2).
    secondary: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Timings:
    """Seconds spent in each stage of one invocation (logged and exported as metrics)."""

    prefetch: float = 0.0
    features: float = 0.0
    model: float = 0.0  # the primary and the secondary models
    cards: float = 0.0
    extra: dict = field(default_factory=dict)


def invoke(bound: BoundService, request: HookRequest, *, now: datetime, fetcher: Fetcher | None = None,
           base_url: str | None = None, link_kinds: tuple[str, ...] = DEFAULT_KINDS,
           timings: Timings | None = None, explain_token: str | None = None) -> tuple[CdsResponse, BuildContext]:
    """Answer `request` with cards. Raises CdsError subclasses (400/412/500)."""
    t = timings or Timings()
    service = bound.definition
    start = time.perf_counter()
    data = resolve_prefetch(service, request, fetcher)
    t.prefetch = time.perf_counter() - start

    start = time.perf_counter()
    # Another patient's data (a subject that is not context.patientId) is never used for this one.
    resources = {key: tuple(r for r in kd.resources if not about_another_patient(r, request.patient_id)) for key, kd in data.items()}
    everything = tuple(r for rs in resources.values() for r in rs)
    ctx = ExtractionContext(as_of=now, patient=_patient(everything, request.patient_id), hook_context=request.context,
                            all_resources=everything)
    sources, sets = with_sets(service.observation_sets, resources, ctx)  # prefetch keys and observation sets
    features = extract(service.features, sources, replace(ctx, sets=sets))
    unavailable = {key: kd.unavailable for key, kd in data.items() if kd.unavailable}
    applicability = assess(service, features, unavailable)
    t.features = time.perf_counter() - start

    prediction = None
    start = time.perf_counter()
    model = bound.model
    in_population = applicability.model_applies  # the service applies and the model's own criteria hold
    if model is not None and in_population and not features.missing(model.info.required):
        try:
            prediction = model.predict(features)
        except ValueError as exc:  # a model refusing its input is a bug in the declarations
            raise ModelError(f"model {model.info.id} refused its input: {exc}") from None
    secondary = {ref: _secondary(m, features) if in_population else None for ref, m in bound.secondary.items()}
    t.model = time.perf_counter() - start

    start = time.perf_counter()
    build_ctx = BuildContext(service, request, features, model, prediction, unavailable, base_url=base_url,
                             link_kinds=link_kinds, explain_token=explain_token, secondary=secondary,
                             applicability=applicability)
    cards = tuple(bound.builder.build(build_ctx))
    # No card: the why only for a caller that asked for it (an EHR gets `{"cards": []}`, RESP-2).
    extension = explain_no_card(build_ctx) if not cards and request.wants_no_card_reason else None
    t.cards = time.perf_counter() - start
    return CdsResponse(cards, extension=extension), build_ctx


def _secondary(model, features) -> Prediction | None:
    """A secondary model's prediction, or None when an input is missing or outside its domain (e.g.
    Cockcroft-Gault at age ≥ 140): the card then says it was not calculated, beside the primary result."""
    if features.missing(model.info.required):
        return None
    try:
        return model.predict(features)
    except ValueError:
        return None


def _patient(resources: tuple[dict, ...], patient_id: str) -> dict | None:
    patients = [r for r in resources if r.get("resourceType") == "Patient"]
    return next((p for p in patients if p.get("id") == patient_id), patients[0] if patients else None)
