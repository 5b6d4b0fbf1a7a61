"""The risk networks: logistic regression, or one hidden ReLU layer, on standardised inputs.

nanoGPT habit (architecture habit 15): a small `@dataclass` config saved beside the weights, a
readable `forward` with shapes, and an input-width assert. The normalisation statistics and the
calibration (Platt: `a * logit + b`) are buffers, so the saved state dict is the whole model:
raw feature values in the service file's units → calibrated logit.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class NetConfig:
    n_features: int
    hidden: int = 0  # 0 → logistic regression; > 0 → one hidden ReLU layer of this width

    @property
    def kind(self) -> str:
        return "logistic" if self.hidden == 0 else f"mlp-{self.hidden}"

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict) -> "NetConfig":
        return cls(n_features=int(raw["n_features"]), hidden=int(raw.get("hidden", 0)))


class RiskNet(nn.Module):
    # Buffers and layers, declared for the type checker (nn.Module's attribute lookup is untyped).
    mean: torch.Tensor
    scale: torch.Tensor
    calibration: torch.Tensor
    hidden: nn.Linear
    out: nn.Linear

    def __init__(self, config: NetConfig):
        super().__init__()
        self.config = config
        n = config.n_features
        self.register_buffer("mean", torch.zeros(n, dtype=torch.float64))
        self.register_buffer("scale", torch.ones(n, dtype=torch.float64))
        # Platt recalibration fitted on the validation split: calibrated = a * logit + b.
        self.register_buffer("calibration", torch.tensor([1.0, 0.0], dtype=torch.float64))
        if config.hidden:
            self.hidden = nn.Linear(n, config.hidden, dtype=torch.float64)
            self.out = nn.Linear(config.hidden, 1, dtype=torch.float64)
        else:
            self.out = nn.Linear(n, 1, dtype=torch.float64)

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale

    def uncalibrated_logit(self, z: torch.Tensor) -> torch.Tensor:
        """(B, n) standardised inputs → (B,) logits before recalibration."""
        assert z.shape[-1] == self.config.n_features, f"expected {self.config.n_features} inputs, got {z.shape[-1]}"
        h = torch.relu(self.hidden(z)) if self.config.hidden else z  # (B, hidden) or (B, n)
        return self.out(h).squeeze(-1)  # (B,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n) raw feature values → (B,) calibrated logits."""
        a, b = self.calibration[0], self.calibration[1]
        return a * self.uncalibrated_logit(self.standardise(x)) + b
