"""Local validation metrics of scored patients against an observed outcome (numpy; no Spark, no Flask).

Discrimination (ROC, AUROC with a bootstrap CI), calibration (binned observed vs predicted with
Wilson intervals, and the logistic recalibration curve: slope and intercept), clinical usefulness
(decision curve: net benefit of acting at each threshold, Vickers & Elkin, Med Decis Making 2006),
and the same summary per subgroup. The definitions are the training protocol's (`models.evaluation`).
"""
from __future__ import annotations

import math

import numpy as np

from models.evaluation import MIN_CLASS, brier, logistic_fit, logit, summarise

SUBGROUPS = ("sex", "race", "ethnicity", "age_band")
THRESHOLDS = tuple(round(t / 100, 2) for t in range(1, 61))  # decision-curve risk thresholds, 1% to 60%
Z95 = 1.959963984540054


def validation_metrics(y: np.ndarray, p: np.ndarray, groups: dict[str, np.ndarray], *, seed: int = 0,
                       bins: int = 10) -> dict:
    """Every number of the report, JSON-ready. `groups` maps a subgroup column to one label per patient."""
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    out = {"overall": _summarise(y, p, seed), "roc": roc_points(y, p) if _both(y) else [],
           "calibration": calibration(y, p, bins=bins), "decision_curve": decision_curve(y, p)}
    out["subgroups"] = {
        name: [{"group": str(g), **_summarise(y[labels == g], p[labels == g], seed)}
               for g in sorted(set(labels.tolist()), key=str)]
        for name, labels in ((n, np.asarray(groups[n], dtype=object)) for n in SUBGROUPS if n in groups)
    }
    return out


def _summarise(y: np.ndarray, p: np.ndarray, seed: int) -> dict:
    """The training protocol's summary; counts only when every prediction is equal (no ranking, no slope)."""
    if len(y) and np.ptp(p) > 0:
        return summarise(y, p, seed=seed)
    n, events = len(y), int(y.sum())
    return {"n": n, "events": events, "observed_rate": round(events / n, 6) if n else None,
            "mean_predicted": round(float(p.mean()), 6) if n else None, "brier": round(brier(y, p), 6) if n else None,
            "auroc": None, "auroc_ci": None, "calibration_slope": None, "calibration_intercept": None,
            "note": "every predicted risk is the same: AUROC and calibration not estimated"}


def _both(y: np.ndarray) -> bool:
    return int(y.sum()) >= MIN_CLASS and len(y) - int(y.sum()) >= MIN_CLASS


def roc_points(y: np.ndarray, p: np.ndarray, max_points: int = 200) -> list[list[float]]:
    """[false positive rate, true positive rate] from the highest threshold down (ties in one step)."""
    order = np.argsort(-p, kind="stable")
    ys, ps = y[order], p[order]
    last_of_tie = np.r_[np.diff(ps) != 0, True]
    tpr = np.cumsum(ys)[last_of_tie] / max(int(y.sum()), 1)
    fpr = np.cumsum(1 - ys)[last_of_tie] / max(len(y) - int(y.sum()), 1)
    points = np.c_[np.r_[0.0, fpr], np.r_[0.0, tpr]]
    if len(points) > max_points:  # keep the curve's shape, not every patient
        points = points[np.unique(np.linspace(0, len(points) - 1, max_points).round().astype(int))]
    return [[round(float(a), 5), round(float(b), 5)] for a, b in points]


def calibration(y: np.ndarray, p: np.ndarray, *, bins: int = 10) -> dict:
    """Bins of equal size by predicted risk: mean predicted, observed rate with a 95% Wilson interval, n."""
    out: dict = {"bins": []}
    if len(y) == 0:
        return out
    order = np.argsort(p, kind="stable")
    for chunk in np.array_split(order, min(bins, len(y))):
        n, events = len(chunk), int(y[chunk].sum())
        lo, hi = wilson(events, n)
        out["bins"].append({"predicted": round(float(p[chunk].mean()), 5), "observed": round(events / n, 5),
                            "n": n, "events": events, "ci": [round(lo, 5), round(hi, 5)]})
    if _both(y) and np.ptp(p) > 0:
        lp = logit(p)
        out["slope"] = round(logistic_fit(lp, y)[1], 4)
        out["intercept"] = round(logistic_fit(lp, y, fix_slope=True)[0], 4)
    out["observed_expected"] = round(float(y.sum() / p.sum()), 4) if p.sum() > 0 else None
    return out


def decision_curve(y: np.ndarray, p: np.ndarray, thresholds=THRESHOLDS) -> list[dict]:
    """Net benefit = TP/n − FP/n · t/(1−t) of acting when risk ≥ t; against acting for everyone (and for no one: 0)."""
    n, prevalence = len(y), float(y.mean()) if len(y) else 0.0
    rows = []
    for t in thresholds:
        act = p >= t
        tp, fp = int((act & (y == 1)).sum()), int((act & (y == 0)).sum())
        odds = t / (1 - t)
        rows.append({"threshold": t, "model": round((tp - fp * odds) / n, 5) if n else None,
                     "treat_all": round(prevalence - (1 - prevalence) * odds, 5) if n else None})
    return rows


def wilson(events: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (well-behaved at 0 and n)."""
    if n == 0:
        return (math.nan, math.nan)
    phat = events / n
    centre = (phat + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))
