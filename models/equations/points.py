"""What every additive point score shares: contributions are each item's points, the baseline is 0,
and an item whose input is missing scores 0 and is listed as not assessed (the total is a lower bound)."""
from __future__ import annotations

from typing import Mapping, Sequence

from ..feature_vector import FeatureVector

from ..protocol import ModelInfo, Prediction


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
