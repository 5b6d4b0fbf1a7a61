"""The interface every model implements, equation or trained network (architecture 2.3)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence

from .feature_vector import FeatureVector
from .model_card import Evidence
from .score_scale import PROBABILITY, Band


@dataclass(frozen=True, slots=True)
class Prediction:
    """A model's answer with everything needed to trace it.

    `contributions` are additive on the linear-predictor (logit / log-hazard) scale:
    `baseline + sum(contributions.values()) == linear_predictor` (to float precision).
    `baseline` is the linear predictor of the model's declared reference profile.
    """

    model: str
    version: str
    score: float
    linear_predictor: float
    baseline: float
    contributions: Mapping[str, float]
    details: Mapping[str, Any] = field(default_factory=dict)  # what the model reports besides the score (JSON)

    def top_raising(self, n: int = 3) -> list[tuple[str, float]]:
        ranked = sorted(self.contributions.items(), key=lambda kv: kv[1], reverse=True)
        return [(k, v) for k, v in ranked if v > 0][:n]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What a card and the discovery/explanation pages say about a model."""

    id: str
    version: str
    title: str
    population: str
    outcome: str
    citation: str
    feature_names: tuple[str, ...]
    # Inputs that must be present for a prediction; the rest may be imputed by declared defaults.
    required: tuple[str, ...] = ()
    # How the score reads (models/score_scale.py): a probability (0-1, shown in %), points, or a quantity
    # in `unit` (UCUM); `link` maps the linear predictor to the score; eGFR and CrCl are better when higher.
    scale: str = PROBABILITY
    unit: str = ""
    link: str = "logit"
    higher_is_better: bool = False
    bands: tuple[Band, ...] = ()
    # Clinician wording of contribution keys that are not feature names (the items of a point score).
    labels: Mapping[str, str] = field(default_factory=dict)
    # The published evidence of an equation (model_card.py); a trained artifact's is its model card.
    evidence: Evidence | None = None


class Model(Protocol):
    info: ModelInfo

    def predict(self, x: FeatureVector) -> Prediction:
        """Score one patient. Raises `ValueError` when a required input is missing."""
        ...

    def predict_values(self, values: Sequence[float]) -> float:
        """Score one row of `info.feature_names` values (training / benchmarks)."""
        ...
