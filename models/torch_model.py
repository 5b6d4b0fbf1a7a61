"""A trained `RiskNet` behind the `Model` protocol: one patient's features → a traceable Prediction.

Loaded once per process by `models.artifacts.load_artifact` (CPU, `.eval()`, gradients off); each
prediction runs under `torch.inference_mode()` (architecture habit 15).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch

from .explain import Explainer
from .feature_vector import FeatureVector
from .nets import RiskNet
from .protocol import ModelInfo, Prediction


class TorchRiskModel:
    def __init__(self, info: ModelInfo, net: RiskNet, details: Mapping[str, object]):
        self.info = info
        self.net = net
        self._explain = Explainer(net)  # weights snapshot for per-prediction contributions
        # Fixed facts every prediction carries (artifact, manifest digest, explanation method…).
        self._details = dict(details)

    def _tensor(self, values: Sequence[float]) -> torch.Tensor:
        if len(values) != len(self.info.feature_names):
            raise ValueError(f"expected {len(self.info.feature_names)} values, got {len(values)}")
        if any(v is None or not math.isfinite(float(v)) for v in values):
            raise ValueError("every input must be a finite number")
        return torch.tensor([float(v) for v in values], dtype=torch.float64)

    def predict_values(self, values: Sequence[float]) -> float:
        """Risk for one row of `info.feature_names` values (service units)."""
        x = self._tensor(values)
        with torch.inference_mode():
            return float(torch.sigmoid(self.net(x.unsqueeze(0))[0]))

    def predict(self, x: FeatureVector) -> Prediction:
        names = self.info.feature_names
        x.require(names)  # every input is required: no training-mean imputation behind the clinician's back
        xt = self._tensor([x.number(n) for n in names])
        with torch.inference_mode():
            lp = float(self.net(xt.unsqueeze(0))[0])
        contrib = self._explain(xt.numpy())
        return Prediction(
            model=self.info.id,
            version=self.info.version,
            score=1.0 / (1.0 + math.exp(-lp)),
            linear_predictor=lp,
            baseline=self._explain.baseline,
            contributions=dict(zip(names, (float(c) for c in contrib))),
            details=self._details,
        )
