"""Helpers shared by the builders whose cards rest on more than one published equation
(renal dosing: CKD-EPI + Cockcroft-Gault; AF: CHA2DS2-VASc + HAS-BLED; bedside: NEWS2 + qSOFA).

The service file's `[model] ref` is the primary equation and `[model] secondary` lists the others
(e.g. `secondary = ["equation:cockcroft-gault-1976"]`); the pipeline runs and times them all, and the
builder reads their predictions from `ctx.prediction` and `ctx.secondary`. Every number on a card is
traceable: the card's extension carries each equation's id, version, score and contributions.
"""
from __future__ import annotations

from typing import Any, Iterable

from cds_service.builders.base import PREDICTION_EXTENSION, BuildContext, prediction_extension, prediction_json
from hooks.definitions import ServiceDefinition
from hooks.loader import ServiceFileError
from models.protocol import Prediction


def check_model(service: ServiceDefinition, expected: str | None) -> None:
    """Start-up check: the builder's logic is written for this primary model (None: for no primary model)."""
    if service.model_ref != expected:
        wanted = f'[model] ref = "{expected}"' if expected is not None else "no [model] ref"
        raise ServiceFileError(service.path, "model.ref", f"builder '{service.builder}' needs {wanted} (got {service.model_ref!r})")


def check_secondary(service: ServiceDefinition, *expected: str) -> None:
    """Start-up check: `[model] secondary` lists exactly the models the builder's card shows (none by default)."""
    if set(service.secondary_refs) != set(expected):
        wanted = "[" + ", ".join(f'"{r}"' for r in expected) + "]"
        raise ServiceFileError(service.path, "model.secondary",
                               f"builder '{service.builder}' needs [model] secondary = {wanted} (got {list(service.secondary_refs)})")


def extension(ctx: BuildContext, names: Iterable[str] | None, *others: Prediction | None, score_used: bool = True) -> dict:
    """`prediction_extension` of the primary equation, plus `predictions`: every equation on the card."""
    ext = prediction_extension(ctx, set(names) if names is not None else None, score_used=score_used)
    all_predictions = [p for p in (ctx.prediction, *others) if p is not None]
    if all_predictions:
        ext[PREDICTION_EXTENSION]["predictions"] = [prediction_json(p) for p in all_predictions]
    return ext


def points_text(p: Prediction | None) -> str:
    """A point score as shown: '4', or '≥4' when some items could not be assessed (a lower bound)."""
    if p is None:
        return "?"
    return f"{p.score:.0f}" if p.details.get("complete", True) else f"≥{p.score:.0f}"


def feature_def(service: ServiceDefinition, name: str):
    d = service.feature(name)
    if d is None:
        raise KeyError(f"no declared feature '{name}'")  # callers check the name first (require_feature)
    return d


def require_feature(service: ServiceDefinition, name: Any, field: str) -> str:
    if not isinstance(name, str) or name not in {f.name for f in service.features}:
        raise ValueError(f"{field}: '{name}' is not a declared feature")
    return name
