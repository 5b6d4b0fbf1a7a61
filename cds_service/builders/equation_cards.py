"""Helpers shared by the builders whose cards rest on more than one published equation
(renal dosing: CKD-EPI + Cockcroft-Gault; AF: CHA2DS2-VASc + HAS-BLED; bedside: NEWS2 + qSOFA).

The service file's `model.ref` is the primary equation (run by the pipeline); a builder names the
others in its `[data]` (e.g. `crcl_model = "equation:cockcroft-gault-1976"`). Every number on a card is
traceable: the card's extension carries each equation's id, version, score and contributions.
"""
from __future__ import annotations

import string
from typing import Any, Iterable, Mapping

from hooks.catalog import SUMMARY_MAX
from hooks.definitions import ServiceDefinition
from models.protocol import Prediction

from cds_service.cards import Card, Source, Suggestion
from cds_service.builders.base import PREDICTION_EXTENSION, BuildContext, explanation_link, prediction_extension


def equation(ref: str):
    """A fresh instance of the published equation `equation:<id>` (cheap, stateless objects)."""
    from models.registry import EQUATIONS  # the registry imports every equation module

    kind, _, name = str(ref).partition(":")
    if kind != "equation" or name not in EQUATIONS:
        raise ValueError(f"'{ref}' is not a known equation (known: {', '.join('equation:' + k for k in sorted(EQUATIONS))})")
    return EQUATIONS[name]()


def check_equation(service: ServiceDefinition, key: str, expected: str | None = None) -> set[str]:
    """Start-up check of `[data] <key> = "equation:<id>"`: known, and its inputs declared as features."""
    ref = service.data.get(key)
    if not isinstance(ref, str):
        raise ValueError(f"data.{key} must name an equation, e.g. \"{expected or 'equation:<id>'}\"")
    if expected and ref != expected:
        raise ValueError(f"data.{key} must be \"{expected}\" (the card's logic is written for it), not \"{ref}\"")
    model = equation(ref)
    declared = {f.name for f in service.features}
    missing = [n for n in model.info.feature_names if n not in declared]
    if missing:
        raise ValueError(f"data.{key} ({ref}) needs features not declared here: {', '.join(missing)}")
    return set(model.info.feature_names)


def check_model(service: ServiceDefinition, expected: str) -> None:
    if service.model_ref != expected:
        raise ValueError(f"builder '{service.builder}' needs [model] ref = \"{expected}\" (got {service.model_ref!r})")


def predict(model, features) -> Prediction | None:
    """The model's prediction, or None when a required input is missing or outside its domain."""
    if features.missing(model.info.required):
        return None
    try:
        return model.predict(features)
    except ValueError:
        return None


def prediction_json(p: Prediction) -> dict:
    body: dict[str, Any] = {"model": p.model, "version": p.version, "score": round(p.score, 6),
                            "linearPredictor": round(p.linear_predictor, 6), "baseline": round(p.baseline, 6),
                            "contributions": {k: round(v, 6) for k, v in p.contributions.items()}}
    body.update({k: v for k, v in p.details.items() if v not in (None, "", [], {})})
    return body


def extension(ctx: BuildContext, names: Iterable[str] | None, *others: Prediction | None) -> dict:
    """`prediction_extension` of the primary equation, plus `predictions`: every equation on the card."""
    ext = prediction_extension(ctx, set(names) if names is not None else None)
    all_predictions = [p for p in (ctx.prediction, *others) if p is not None]
    if all_predictions:
        ext[PREDICTION_EXTENSION]["predictions"] = [prediction_json(p) for p in all_predictions]
    return ext


def card(ctx: BuildContext, key: str, summary: str, indicator: str, detail: str, *, source: Source | None = None,
         suggestions: Iterable[Suggestion] = (), selection_behavior: str = "at-most-one", extension: dict | None = None) -> Card:
    suggestions = tuple(suggestions)
    # A card with numbers behind it links to the page that explains them (issue #7).
    links = explanation_link(ctx) if ctx.prediction is not None else ()
    return Card(summary=shorten(summary), indicator=indicator, source=source or ctx.source(), uuid=ctx.card_uuid(key),
                detail=detail, suggestions=suggestions, selection_behavior=selection_behavior if suggestions else None,
                override_reasons=ctx.override_reasons(), links=links, extension=extension)


def shorten(text: str) -> str:
    """CARD-2 guard for texts built from record data (drug names): cut at a word, mark with an ellipsis."""
    if len(text) <= SUMMARY_MAX:
        return text
    return text[: SUMMARY_MAX - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def check_template(template: Any, field: str, longest: Mapping[str, str]) -> None:
    """A summary template may use only `longest`'s placeholders and must stay under 140 characters (CARD-2)."""
    if not isinstance(template, str) or not template.strip():
        raise ValueError(f"{field} is required")
    for _, name, spec, _ in string.Formatter().parse(template):
        if name is not None and name not in longest:
            raise ValueError(f"{field}: unknown placeholder '{{{name}}}' (allowed: {', '.join(sorted(longest))})")
        if spec:
            raise ValueError(f"{field}: placeholders take no format spec")
    text = template.format(**longest)
    if len(text) > SUMMARY_MAX:
        raise ValueError(f"{field} can reach {len(text)} characters; a summary must stay under 140 (CARD-2)")


def number(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"


def points_text(p: Prediction | None) -> str:
    """A point score as shown: '4', or '≥4' when some items could not be assessed (a lower bound)."""
    if p is None:
        return "?"
    return f"{p.score:.0f}" if p.details.get("complete", True) else f"≥{p.score:.0f}"


def feature_names_for(service: ServiceDefinition, kind: str) -> list[str]:
    return [f.name for f in service.features if f.kind == kind]


def feature_def(service: ServiceDefinition, name: str):
    return next(f for f in service.features if f.name == name)


def require_feature(service: ServiceDefinition, name: Any, field: str) -> str:
    if not isinstance(name, str) or name not in {f.name for f in service.features}:
        raise ValueError(f"{field}: '{name}' is not a declared feature")
    return name
