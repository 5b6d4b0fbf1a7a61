"""What every builder receives, and the pieces cards of every service share."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from cds_service.applicability import APPLIES, NOT_APPLICABLE, Applicability, Finding
from cds_service.builders.links import DEFAULT_KINDS, explanation_links
from cds_service.builders.markdown import literal
from cds_service.cards import Action, Card, Coding, Link, Source, Suggestion, stable_uuid
from cds_service.hook_request import HookRequest
from fhir_adapters.orders import MedicationOrder
from fhir_adapters.resources import NO_ACCESS, TIMEOUT, Unavailable
from fhir_adapters.units import unit_text, value_text
from hooks.catalog import SUMMARY_MAX
from hooks.definitions import ROUTES, Dose, OrderDef, ServiceDefinition, SuggestionDef
from models.feature_vector import Feature, FeatureVector
from models.protocol import Model, Prediction

PREDICTION_EXTENSION = "org.cdsml.prediction"
# In the prediction extension: False when the card's decision used none of the service's computed scores (LDL-C >= 190
# decides a statin without a risk estimate; dialysis replaces eGFR; an NSAID with an anticoagulant is a warning at any
# CHA2DS2-VASc; outside the population nothing is scored). When every card of a call says so, the explanation page
# shows what decided, and any score only as context marked "not used for this decision" (`storage.explanations`,
# `ui.explain_views`).
SCORE_USED = "scoreUsed"
BOOLEAN_KINDS = {"sex", "race", "condition", "medication", "latest_coded",
                 "medication_with_drafts", "acvpu", "altered_mentation", "supplemental_oxygen", "hypercapnic_target",
                 "ethnicity", "any", "pregnancy", "encounter_class", "encounter_status", "condition_or_procedure",
                 "encounter_condition"}


@dataclass(frozen=True, slots=True)
class BuildContext:
    service: ServiceDefinition
    request: HookRequest
    features: FeatureVector
    model: Model | None
    prediction: Prediction | None
    # Prefetch keys whose data could not be obtained, with the reason (policy "omit").
    unavailable: Mapping[str, Unavailable] = field(default_factory=dict)
    # Absolute base URL of this service for links (explanation page), when known.
    base_url: str | None = None
    # Which explanation links cards carry (`ui_explain_links`): "smart" and/or "absolute".
    link_kinds: tuple[str, ...] = DEFAULT_KINDS
    # The capability token of this call's explanation page (None: no page, so no link).
    explain_token: str | None = None
    # Predictions of the `[model] secondary` models, by ref (None: not calculated, an input missing).
    secondary: Mapping[str, Prediction | None] = field(default_factory=dict)
    # Whether the patient is in the service's `[[population]]` (`cds_service.applicability`).
    applicability: Applicability = field(default_factory=Applicability)

    def require_model(self) -> Model:
        """The service's model, for a builder that is only bound to services with one (its start-up check)."""
        if self.model is None:
            raise RuntimeError(f"{self.service.id}: the '{self.service.builder}' builder needs the service's [model]")
        return self.model

    def require_prediction(self) -> Prediction:
        """The model's prediction, for code reached only after the builder has established there is one."""
        if self.prediction is None:
            raise RuntimeError(f"{self.service.id}: a card that shows the score was built without one")
        return self.prediction

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


def note_text(f: Feature, *, markdown: bool = True) -> str:
    """A feature's note as a card shows it. Notes can carry text from the record (a coded concept's
    display, an encounter class, an ACVPU answer): every note enters a card through here, so that text
    from FHIR is handled in one place. In the Markdown `detail` it is shown literally (`markdown.literal`:
    never a link, an image or HTML); `markdown=False` for the plain-text summary."""
    note = f.note or ""
    return literal(note) if markdown else note


def order_text(order: MedicationOrder) -> str:
    """A draft order as a card's Markdown names it: its text, shown literally. Its reference (`MedicationRequest/<id>`)
    is provenance, not clinician text: it is in the action's `resourceId` and the card's extension."""
    return literal(order.text)


def found_text(f: Feature) -> str:
    """What a present finding rests on, as a clinician reads it: the label, what the record calls it and its date
    ('Clinical ASCVD: NSTEMI, 2026-11-26'), never a resource reference (those are in the card's extension)."""
    note = note_text(f) if f.note and f.note.lower() != f.label.lower() else ""
    inner = ", ".join(x for x in (note, literal(f.date) if f.date else "") if x)
    return f"{f.label}" + (f" ({inner})" if inner else "")


# UCUM codes as a clinician reads them (a unit not listed is shown as written).
def display_value(ctx: BuildContext, f: Feature) -> str:
    """A feature's value as a clinician reads it: 'yes'/'no' for flags, value with unit otherwise."""
    if f.value is None:
        return "missing"
    d = ctx.service.feature(f.name)
    if d is not None and d.kind in BOOLEAN_KINDS:
        return "yes" if f.value >= 0.5 else "no"
    return f"{value_text(f.value, f.name)} {unit_text(f.unit)}".strip()


def when_text(ctx: BuildContext, f: Feature) -> str:
    """When a value was taken, for a clinician: ' at 14:05 UTC' for a timed value (a vital sign of an observation set)
    taken on the hook's day, ' at 2026-11-30 14:05 UTC' on another day, ' (2026-11-30)' for a dated one, '' else."""
    stamp = f.date or ""
    if " " not in stamp:
        return f" ({literal(stamp)})" if stamp else ""
    day, _, clock = stamp.partition(" ")
    return f" at {literal(clock if day == ctx.features.as_of.date().isoformat() else stamp)}"


# ---- how a card words an input it does not have ---------------------------------------------------
# "Not recorded" only when the data was read and held nothing; "not available to the service" or "could
# not be retrieved" when it could not be read; "invalid" when a value was recorded but cannot be used.
# Every builder words a missing input through `missing_text` (guidelines: "unavailable is not absent").

def unavailable_text(reason: object, *, short: bool = False) -> str:
    """Why a prefetch key's data is not there, for a clinician (`reason`: a `resources.Unavailable`)."""
    cause = getattr(reason, "cause", None)
    if cause == NO_ACCESS:
        return "not available to the service (no prefetch and no FHIR access)"
    if cause == TIMEOUT:
        return "could not be retrieved (timeout)"
    return "could not be retrieved" + ("" if short else f" ({literal(reason)})")


def window_text(ctx: BuildContext, name: str) -> str:
    """'in the last 24 h' / 'in the last 90 days' / 'in the last 3 years' from the feature's declared lookback, or ''."""
    d = ctx.service.feature(name)
    days = d.param("lookback_days") if d is not None else None
    if days is None:
        return ""
    days = float(days)
    if days * 24 <= 72:
        return f" in the last {days * 24:g} h"
    years = days / 365.25
    if years >= 0.99 and abs(years - round(years)) < 0.01:  # 365, 730, 1095, 1825, 1826 days
        return " in the last year" if round(years) == 1 else f" in the last {round(years)} years"
    return f" in the last {days:g} days"


def unavailable_sources(ctx: BuildContext, *names: str) -> list[str]:
    """The prefetch keys feeding these features whose data could not be obtained: what they say is "not
    available to the service", never "not recorded" (`ServiceDefinition.sources_of`: a declared source, the
    key an observation set is chosen from, the Patient read of a feature without one)."""
    if not ctx.unavailable:  # every prefetch key's data was obtained: the usual call
        return []
    return sorted({key for name in names for key in ctx.service.sources_of(name) if key in ctx.unavailable})


def missing_text(ctx: BuildContext, name: str, *, short: bool = False) -> str:
    """How a card says that input `name` has no usable value: 'not recorded in the last 24 h' (the data was
    read and held nothing), 'not available to the service (no prefetch and no FHIR access)' or 'could not be
    retrieved (timeout)' (it could not be read), 'invalid value' (recorded but not usable: NaN, implausible).
    `short` leaves out the details (for summaries)."""
    f = ctx.features[name]
    down = unavailable_sources(ctx, name)
    if down:
        return unavailable_text(ctx.unavailable[down[0]], short=short)
    if f.invalid:
        return "invalid value" + ("" if short or not f.note else f", not used ({note_text(f)})")
    text = "not recorded" + window_text(ctx, name)
    return text if short or f.note in QUIET_NOTES else f"{text} ({note_text(f)})"


# Extractor notes that only restate "not recorded" (the card would say it twice).
QUIET_NOTES = (None, "", "no result recorded", "no result on record", "no matching condition on the problem list",
               "none recorded", "none recorded in the window", "no pregnancy recorded", "no observation recorded in the window",
               "race not recorded", "ethnicity not recorded")


def absence_text(ctx: BuildContext, names, none_found: str, *, what: str = "") -> str:
    """How a card says the record holds none of something (`none_found`, e.g. 'no coronary stent on record'):
    as given only when every prefetch key feeding the features `names` was read; otherwise limited to what was
    read, naming what could not be ('no <what> found in the data available (procedures: not available to the
    service …)'). Unavailable is not absent: an absence is claimed only from data that was read."""
    down = unavailable_sources(ctx, *names)
    if not down:
        return none_found
    return f"{'no ' + what if what else 'none'} found in the data available (" + "; ".join(
        f"{key}: {unavailable_text(ctx.unavailable[key], short=True)}" for key in down) + ")"


def missing_state(ctx: BuildContext, name: str) -> str:
    """The one-word state of an input with no usable value, for a summary: 'not recorded', 'not available'
    (its data could not be obtained) or 'invalid'."""
    if unavailable_sources(ctx, name):
        return "not available"
    return "invalid" if ctx.features[name].invalid else "not recorded"


def missing_states(ctx: BuildContext, names) -> str:
    """'creatinine, weight not recorded' — the inputs' labels and their common state ('missing' when mixed)."""
    names = list(names)
    states = {missing_state(ctx, n) for n in names}
    return ", ".join(ctx.features[n].label.lower() for n in names) + " " + (states.pop() if len(states) == 1 else "missing")


def unavailable_lines(ctx: BuildContext) -> list[str]:
    """One line per prefetch key whose data could not be obtained, worded for a clinician."""
    return [f"- {key}: {unavailable_text(reason)}" for key, reason in ctx.unavailable.items()]


# ---- applicability: a card that says the service does not apply, never a score -----------------------

def _shown(ctx: BuildContext, finding: Finding, *, markdown: bool = True) -> dict[str, str]:
    f = finding.feature
    return {"value": display_value(ctx, f), "detail": note_text(f, markdown=markdown) or display_value(ctx, f)}


def population_text(ctx: BuildContext) -> str:
    """Who the service is for (its `scope = "service"` criteria; a model's own range is the builder's to say)."""
    return "; ".join(c.label for c in ctx.service.population if c.scope == "service")


def applicability_cards(ctx: BuildContext, *, undecided: bool = True) -> list | None:
    """None when the service applies (build the card); otherwise the cards to answer with: a short info card
    saying why it does not apply, or that it could not be checked, or none (`cards.on_not_applicable =
    "silent"`). `undecided=False` leaves the undecided case to the caller (e.g. a card naming every missing
    input). Call it first, before any score is shown."""
    a = ctx.applicability
    if a.status == APPLIES or (a.status != NOT_APPLICABLE and not undecided):
        return None
    default = ctx.service.cards.on_not_applicable
    title = ctx.service.title
    if a.status == NOT_APPLICABLE:
        # A criterion may answer differently from the service (e.g. no card for an outpatient visit). One outside
        # criterion that answers with silence silences the service: a child without AF gets no "AF scores are for
        # adults" card, a pregnant woman at an outpatient visit no NEWS2 card.
        answers = [(x.criterion.on_not_applicable or default) for x in a.failed]
        if "silent" in answers:
            return []
        first = a.failed[0]
        c = first.criterion
        summary = (c.not_applicable or f"{title}: does not apply ({c.label})").format(**_shown(ctx, first, markdown=False))
        lines = ["**Not calculated: the patient is outside the population this service was made for.**", ""]
        lines += [f"- {x.criterion.label}: not met — {_shown(ctx, x)['detail']}" for x in a.failed]
        lines += [item for x in a.failed if x.criterion.instead for item in ("", x.criterion.instead)]
        key = "not-applicable"
    else:
        if default == "silent":
            return []
        stops = [u for u in a.unknown if u.criterion.if_unknown == "stop"]
        c = stops[0].criterion
        why = missing_text(ctx, stops[0].feature.name, short=True)
        summary = (c.unknown or f"{title}: not calculated, could not check {c.label}").format(why=why)
        lines = ["**Not calculated: whether this service applies to the patient could not be checked.**", ""]
        lines += [f"- {u.criterion.label}: {u.feature.label} {missing_text(ctx, u.feature.name)}" for u in stops]
        key = "not-checked"
    lines += ["", f"*Intended population:* {population_text(ctx)}."]
    names = {x.feature.name for x in (*a.failed, *a.unknown)}
    # Decided by who the patient is, before any arithmetic: no score stands behind this card.
    return [card(ctx, key, summary, "info", "\n".join(lines), extension=prediction_extension(ctx, names, score_used=False))]


def applicability_notes(ctx: BuildContext) -> list[str]:
    """Detail lines for criteria declared `if_unknown = "note"` that could not be checked (the score stands)."""
    out = []
    for u in ctx.applicability.unchecked:
        c = u.criterion
        out.append(f"**Not checked:** {c.label} — {u.feature.label.lower()} {missing_text(ctx, u.feature.name)}."
                   + (f" {c.instead}" if c.instead else ""))
    return out


def inputs_table(ctx: BuildContext, names) -> str:
    rows = ["| Input | Value | Date |", "| --- | --- | --- |"]
    for name in names:
        f = ctx.features[name]
        value = display_value(ctx, f)
        if f.imputed:
            value += " (default)"
        rows.append(f"| {f.label} | {value} | {literal(f.date) or '-'} |")
    return "\n".join(rows)


def prediction_json(p: Prediction) -> dict:
    """One prediction as the card extension carries it: the exact numbers, rounded to 6 decimals."""
    body: dict[str, Any] = {"model": p.model, "version": p.version, "score": round(p.score, 6),
                            "linearPredictor": round(p.linear_predictor, 6), "baseline": round(p.baseline, 6),
                            "contributions": {k: round(v, 6) for k, v in p.contributions.items()}}
    body.update({k: v for k, v in p.details.items() if v not in (None, "", [], {})})
    return body


def prediction_extension(ctx: BuildContext, names=None, *, score_used: bool = True) -> dict:
    """The card's `extension` member holding the exact numbers behind it (traceability); `score_used=False` for a
    card decided without the computed scores (`SCORE_USED`)."""
    feats = ctx.features.to_json()
    if names is not None:
        feats = {k: v for k, v in feats.items() if k in names}
    body: dict[str, Any] = {"features": feats}
    if ctx.prediction is not None:
        body.update(prediction_json(ctx.prediction))
    if ctx.unavailable:
        body["unavailable"] = {key: str(reason) for key, reason in ctx.unavailable.items()}
    if ctx.service.population:
        body["applicability"] = ctx.applicability.to_json()
    if not score_used:
        body[SCORE_USED] = False
    return {PREDICTION_EXTENSION: body}


LAB_CATEGORY = "http://snomed.info/sct|108252007"  # Laboratory procedure


def order_suggestion(ctx: BuildContext, key: str, label: str, code: str, display: str, *, resource_type: str = "ServiceRequest",
                     text: str = "", category: str | None = None, recommended: bool | None = None,
                     name: str | None = None, ingredient: tuple[str, str] | None = None, dose: Dose | None = None) -> Suggestion:
    """A suggestion that creates one draft order for this patient (SUGG-1, ACT-1). `display` is the code system's name
    (kept in the coding); `name` is how a clinician reads it (the concept's text and the action's description)."""
    system, _, value = code.partition("|")
    patient = {"reference": f"Patient/{ctx.request.patient_id}"}
    codings: list[dict[str, str]] = [{"system": system, "code": value, "display": display}]
    if resource_type == "MedicationRequest" and ingredient:
        # The orderable product first, then its ingredient (same drug, coarser concept).
        codings.append({"system": ingredient[0].partition("|")[0], "code": ingredient[0].partition("|")[2],
                        "display": ingredient[1]})
    concept = {"coding": codings, "text": name or display}
    user = ctx.request.context.get("userId", "")
    if resource_type == "MedicationRequest":
        resource: dict[str, Any] = {"resourceType": "MedicationRequest", "status": "draft", "intent": "order",
                                    "medicationCodeableConcept": concept, "subject": patient}
        if text or dose:
            resource["dosageInstruction"] = [dosage(text, dose)]
    else:
        resource = {"resourceType": "ServiceRequest", "status": "draft", "intent": "order", "code": concept, "subject": patient}
        cat_system, _, cat_code = (category or LAB_CATEGORY).partition("|")
        resource["category"] = [{"coding": [{"system": cat_system, "code": cat_code}]}]
        if text:
            resource["note"] = [{"text": text}]
    if ctx.request.encounter_id:
        resource["encounter"] = {"reference": f"Encounter/{ctx.request.encounter_id}"}
    if user.split("/")[0] in ("Practitioner", "PractitionerRole"):
        resource["requester"] = {"reference": user}
    action = Action("create", f"Create a draft order: {name or display}", resource=resource)
    return Suggestion(label, ctx.suggestion_uuid(key), (action,), recommended)


def lab_order(ctx: BuildContext, key: str, order: OrderDef, *, text: str = "", category: str = LAB_CATEGORY) -> Suggestion:
    """A draft ServiceRequest for a declared test, labelled with its clinician name ("Order HbA1c")."""
    return order_suggestion(ctx, key, f"Order {order.name}", order.code, order.display, name=order.name, text=text,
                            category=category)


def dosage(text: str, dose: Dose | None) -> dict[str, Any]:
    """An R4 Dosage: the text as written, and when declared the structured dose an EHR can sign as is — the amount
    per administration (UCUM), the frequency per day and the route (SNOMED CT)."""
    out: dict[str, Any] = {"text": text} if text else {}
    if dose is not None:
        route_code, route_display = ROUTES[dose.route]
        out["timing"] = {"repeat": {"frequency": dose.times_per_day, "period": 1, "periodUnit": "d"}}
        out["route"] = {"coding": [{"system": "http://snomed.info/sct", "code": route_code, "display": route_display}]}
        out["doseAndRate"] = [{"doseQuantity": {"value": dose.value, "unit": dose.unit, "system": "http://unitsofmeasure.org",
                                                "code": dose.unit}}]
    return out


def declared_suggestion(ctx: BuildContext, s: SuggestionDef) -> Suggestion:
    return order_suggestion(ctx, s.name, s.label, s.code, s.display, resource_type=s.resource_type, text=s.text,
                            category=s.category, recommended=True if s.recommended else None, name=s.order_name or None,
                            ingredient=s.ingredient, dose=s.dose)


def explanation_link(ctx: BuildContext) -> tuple[Link, ...]:
    """Links to the explanation page of this card: `smart` and/or `absolute`, as `ui_explain_links` says;
    worded "Why not calculated?" when no score stands behind the card (the page names what is missing)."""
    if not ctx.base_url or not ctx.explain_token:
        return ()
    calculated = ctx.prediction is not None or any(p is not None for p in ctx.secondary.values())
    return explanation_links(ctx.base_url, ctx.explain_token, ctx.link_kinds, calculated=calculated)


def remove_order(ctx: BuildContext, order: MedicationOrder, label: str, *, key: tuple[str, ...] = (),
                 recommended: bool | None = None) -> Suggestion:
    """A suggestion that removes a draft order of this session: `delete` names it by `resourceId` and
    carries no resource (ACT-1, invariant cds-resp-2). `key` tells apart several suggestions for one order."""
    action = Action("delete", f"Remove the draft order {order.text}", resource_id=order.reference)
    return Suggestion(label, ctx.suggestion_uuid(order.reference, *key), (action,), recommended)


def card(ctx: BuildContext, key: str, summary: str, indicator: str, detail: str, *, source: Source | None = None,
         suggestions: Iterable[Suggestion] = (), selection_behavior: str = "any", extension: dict | None = None) -> Card:
    """The one card factory: the service's source (or the rule's own), a stable uuid, the override reasons,
    and a link to the explanation page whenever a model stands behind the card: its score, or why it was
    not calculated."""
    suggestions = tuple(suggestions)
    links = explanation_link(ctx) if ctx.model is not None or ctx.secondary else ()
    return Card(summary=shorten(summary), indicator=indicator, source=source or ctx.source(), uuid=ctx.card_uuid(key),
                detail=detail, suggestions=suggestions, selection_behavior=selection_behavior if suggestions else None,
                override_reasons=ctx.override_reasons(), links=links, extension=extension, kind=key)


def shorten(text: str) -> str:
    """CARD-2 guard for texts built from record data (drug names): cut at a word, mark with an ellipsis."""
    if len(text) <= SUMMARY_MAX:
        return text
    return text[: SUMMARY_MAX - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"
