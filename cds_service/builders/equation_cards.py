"""Helpers shared by the builders whose cards rest on more than one published equation
(renal dosing: CKD-EPI + Cockcroft-Gault; AF: CHA2DS2-VASc + HAS-BLED; bedside: NEWS2 + qSOFA).

The service file's `model.ref` is the primary equation (run by the pipeline); a builder names the
others in its `[data]` (e.g. `crcl_model = "equation:cockcroft-gault-1976"`). Every number on a card is
traceable: the card's extension carries each equation's id, version, score and contributions.
"""
from __future__ import annotations

from typing import Any, Iterable

from hooks.definitions import ServiceDefinition
from models.protocol import Prediction

from cds_service.builders.base import PREDICTION_EXTENSION, BuildContext, prediction_extension, prediction_json


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


def extension(ctx: BuildContext, names: Iterable[str] | None, *others: Prediction | None) -> dict:
    """`prediction_extension` of the primary equation, plus `predictions`: every equation on the card."""
    ext = prediction_extension(ctx, set(names) if names is not None else None)
    all_predictions = [p for p in (ctx.prediction, *others) if p is not None]
    if all_predictions:
        ext[PREDICTION_EXTENSION]["predictions"] = [prediction_json(p) for p in all_predictions]
    return ext


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
