"""Per-prediction contributions on the calibrated logit scale, against the training means.

Both methods give `baseline + sum(contributions) == logit(x)` with `baseline = logit(training means)`:

- logistic: exact, `a * w_i * (x_i - mean_i) / sd_i`, baseline `a * bias + b`.
- one-hidden-layer ReLU net: integrated gradients (Sundararajan et al. 2017) on the straight path
  from the means to x. Along that path every hidden pre-activation is linear in t, so the logit is
  piecewise linear: the integral is computed exactly from the segments between the points where a
  unit switches on or off, and completeness holds to float precision (no Riemann-sum error).
"""
from __future__ import annotations

import torch

from .nets import RiskNet


def contributions(net: RiskNet, x: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(n,) raw inputs → ((n,) contributions, baseline) on the calibrated logit scale."""
    z = net.standardise(x)  # (n,); the reference (training means) is z = 0
    a, b = net.calibration[0], net.calibration[1]
    if not net.config.hidden:
        w = net.out.weight[0]  # (n,)
        return a * w * z, float(a * net.out.bias[0] + b)
    return a * _ig_relu_exact(net, z), float(net(net.mean.unsqueeze(0))[0])


def _ig_relu_exact(net: RiskNet, z: torch.Tensor) -> torch.Tensor:
    """Exact integrated gradients of the uncalibrated logit from z = 0 to z, (n,) → (n,)."""
    w1, b1 = net.hidden.weight, net.hidden.bias  # (h, n), (h,)
    w2 = net.out.weight[0]  # (h,)
    slope = w1 @ z  # (h,): pre-activation at t is b1 + t * slope
    safe = torch.where(slope == 0, torch.ones_like(slope), slope)
    cuts = torch.where(slope == 0, torch.full_like(slope, -1.0), -b1 / safe)  # (h,) switch points in t
    inside = cuts[(cuts > 0) & (cuts < 1)]
    knots = torch.cat([z.new_zeros(1), torch.sort(inside).values, z.new_ones(1)])  # (k,)
    lengths = knots[1:] - knots[:-1]  # (k-1,)
    mids = (knots[1:] + knots[:-1]) / 2  # (k-1,)
    active = (b1.unsqueeze(0) + mids.unsqueeze(1) * slope.unsqueeze(0) > 0).to(z.dtype)  # (k-1, h)
    # d logit / dz on each segment = (w2 * active) @ w1, weighted by the segment's length.
    mean_grad = (lengths.unsqueeze(1) * active * w2.unsqueeze(0)).sum(0) @ w1  # (n,)
    return z * mean_grad


def integrated_gradients_riemann(net: RiskNet, x: torch.Tensor, steps: int = 256) -> torch.Tensor:
    """Midpoint-rule integrated gradients with autograd (a cross-check of the exact method)."""
    with torch.enable_grad():
        z = net.standardise(x).detach()
        t = (torch.arange(steps, dtype=z.dtype) + 0.5) / steps  # (s,)
        path = (t.unsqueeze(1) * z.unsqueeze(0)).requires_grad_(True)  # (s, n)
        a, b = net.calibration[0], net.calibration[1]
        out = (a * net.uncalibrated_logit(path) + b).sum()
        (grad,) = torch.autograd.grad(out, path)
    return z * grad.mean(0)
