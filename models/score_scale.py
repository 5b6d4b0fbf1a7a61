"""How a model's score reads to a clinician: its scale, its bands, and each input's part in it on the
score's own scale (percentage points of risk, points, or a factor of a product equation).

A `Prediction` keeps contributions on the linear-predictor scale (log-odds, log-hazard, ln eGFR,
points), where they add up exactly to `linear_predictor - baseline`. A clinician reads the score, so
they are mapped back through the model's link, score = g(linear predictor + k) (`ModelInfo.link`):

- "logit": g = 1 / (1 + e^-x) (trained logistic models and nets);
- "cloglog": g = 1 - exp(-e^x) (a Cox model at a fixed horizon: the Pooled Cohort Equations'
  risk = 1 - S10^exp(lp - mean) is cloglog(risk) = lp + ln(-ln S10) - mean);
- "log": g = e^x (product equations: CKD-EPI, Cockcroft-Gault), read as factors;
- "identity": points.

The offset k (0, or e.g. ln(-ln S10) - mean) is recovered from the prediction itself
(k = g^-1(score) - linear predictor), so the link's name is all a model declares.

For "logit" and "cloglog" each input's share of `score - reference score` is its exact Shapley value
on the probability scale (the additive contributions are the players; Lundberg & Lee, NeurIPS 2017):
the shares add up to the difference, whatever the order of the inputs, and an input that did not move
the linear predictor gets nothing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Mapping

PROBABILITY, POINTS, QUANTITY = "probability", "points", "quantity"
LINKS = ("logit", "cloglog", "log", "identity")
# Exact Shapley values cost 2^n evaluations; beyond this many inputs shares are proportional instead.
EXACT_UP_TO = 12


@dataclass(frozen=True, slots=True)
class Band:
    """A published range of the score with its meaning: `low <= score < high` (None: open-ended).
    Probabilities as fractions, like the score."""

    low: float | None
    high: float | None
    label: str

    def holds(self, score: float) -> bool:
        return (self.low is None or score >= self.low) and (self.high is None or score < self.high)

    def to_json(self) -> dict:
        return {"low": self.low, "high": self.high, "label": self.label}


@dataclass(frozen=True, slots=True)
class ScoreTerms:
    """Each input's part in one score, on the score's own scale.

    `kind` "difference": `reference + sum(changes) == score` (probability or points);
    `kind` "factor": `reference * product(changes) == score` (a product equation; `reference` is its constant)."""

    kind: str
    reference: float
    changes: tuple[tuple[str, float], ...]  # (contribution key, change), largest effect first


def _g(link: str, x: float) -> float:
    if link == "logit":
        return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
    if link == "cloglog":
        return -math.expm1(-math.exp(min(x, 700.0)))
    if link == "log":
        return math.exp(x)
    return x


def _g_inverse(link: str, score: float) -> float:
    if link in ("logit", "cloglog"):
        p = min(max(score, 1e-12), 1 - 1e-12)
        return math.log(p / (1 - p)) if link == "logit" else math.log(-math.log1p(-p))
    if link == "log":
        return math.log(score)
    return score


def score_terms(link: str, score: float, linear_predictor: float, baseline: float,
                contributions: Mapping[str, float]) -> ScoreTerms:
    """The contributions of a prediction on the score's scale (see the module docstring)."""
    if link not in LINKS:
        raise ValueError(f"unknown link '{link}' (known: {', '.join(LINKS)})")
    if link == "identity":
        return ScoreTerms("difference", baseline, _ordered(dict(contributions), lambda v: abs(v)))
    k = _g_inverse(link, score) - linear_predictor
    if link == "log":
        factors = {name: math.exp(c) for name, c in contributions.items()}
        return ScoreTerms("factor", _g(link, baseline + k), _ordered(factors, lambda v: abs(math.log(v))))
    reference = _g(link, baseline + k)
    names = list(contributions)
    if len(names) <= EXACT_UP_TO:
        changes = _shapley(lambda total: _g(link, baseline + k + total), [contributions[n] for n in names])
    else:
        total = sum(contributions.values())
        changes = [(_g(link, linear_predictor + k) - reference) * c / total if total else 0.0 for c in contributions.values()]
    return ScoreTerms("difference", reference, _ordered(dict(zip(names, changes)), lambda v: abs(v)))


def _shapley(value_of, terms: list[float]) -> list[float]:
    """Exact Shapley values of the game v(S) = value_of(sum of the terms in S)."""
    n = len(terms)
    weights = [math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)]
    cache: dict[tuple[int, ...], float] = {}

    def v(subset: tuple[int, ...]) -> float:
        if subset not in cache:
            cache[subset] = value_of(sum(terms[i] for i in subset))
        return cache[subset]

    out = []
    for i in range(n):
        others = [j for j in range(n) if j != i]
        share = 0.0
        for size in range(n):
            for subset in combinations(others, size):
                share += weights[size] * (v(tuple(sorted(subset + (i,)))) - v(subset))
        out.append(share)
    return out


def _ordered(changes: dict[str, float], effect) -> tuple[tuple[str, float], ...]:
    return tuple(sorted(changes.items(), key=lambda kv: -effect(kv[1])))
