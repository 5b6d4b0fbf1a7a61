"""What every additive point score shares: contributions are each item's points, the baseline is 0,
and an item whose input is missing scores 0 and is listed as not assessed (the total is a lower bound)."""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

from ..feature_vector import FeatureVector
from ..protocol import ModelInfo, Prediction

# An item's rule over the inputs: True scores the item's points, False scores 0, None means it cannot be assessed.
Rule = Callable[[Mapping[str, float | None]], "bool | None"]


def reading(name: str, test: Callable[[float], bool]) -> Rule:
    """The rule of an item resting on one input: `test(value)`, or None when the input is missing."""
    return lambda x: None if (value := x.get(name)) is None else test(float(value))


def required(x: Mapping[str, float | None], name: str) -> float:
    """An input the score cannot do without: `ValueError` naming it when it is missing."""
    value = x.get(name)
    if value is None:
        raise ValueError(f"missing input: {name}")
    return float(value)


def tally(x: Mapping[str, float | None], items: Mapping[str, tuple[int, Rule]],
          required: Sequence[str] = ()) -> tuple[dict[str, int], list[str]]:
    """Points per item (in `items` order) and the items that could not be assessed (scored 0, listed).

    Raises `ValueError` when a `required` input is missing: the score is then not calculated at all.
    """
    for name in required:
        if x.get(name) is None:
            raise ValueError(f"missing input: {name}")
    points, not_assessed = {}, []
    for item, (value, rule) in items.items():
        hit = rule(x)
        points[item] = value if hit else 0
        if hit is None:
            not_assessed.append(item)
    return points, not_assessed


class PointScore:
    info: ModelInfo

    @staticmethod
    def score_items(x: Mapping[str, float | None]) -> tuple[dict[str, int], list[str]]:
        """Points per item and the items that could not be assessed."""
        raise NotImplementedError

    def details(self, total: float) -> dict:
        """Score-specific facts for the prediction extension (bands, published rates)."""
        return {}

    def predict_values(self, values: Sequence[float | None]) -> float:
        points, _ = self.score_items(dict(zip(self.info.feature_names, values)))
        return float(sum(points.values()))

    def predict(self, x: FeatureVector) -> Prediction:
        points, not_assessed = self.score_items({n: x[n].value for n in self.info.feature_names})
        total = float(sum(points.values()))
        return Prediction(
            model=self.info.id, version=self.info.version, score=total, linear_predictor=total, baseline=0.0,
            contributions={k: float(v) for k, v in points.items()},
            details={"unit": "points", **self.details(total), "complete": not not_assessed, "not_assessed": not_assessed},
        )
