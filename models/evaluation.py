"""Held-out performance: AUROC with a bootstrap CI, Brier score, calibration slope and intercept.

Training-time only (numpy + scipy). Definitions (Steyerberg, Clinical Prediction Models, 2nd ed.):
- calibration slope: b in logit P(y=1) = a + b * lp (ideal 1; < 1 means predictions too extreme);
- calibration intercept (calibration-in-the-large): a in logit P(y=1) = a + 1 * lp (ideal 0;
  > 0 means risks are underestimated on average).
"""
from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata

MIN_CLASS = 5  # below this many events or non-events a group gets counts only, no AUROC/calibration


def auroc(y: np.ndarray, p: np.ndarray) -> float:
    """Mann-Whitney AUROC with tied scores counted as one half."""
    y = np.asarray(y, dtype=bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    ranks = rankdata(p)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def bootstrap_auroc(y: np.ndarray, p: np.ndarray, *, seed: int, n_boot: int = 2000, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the AUROC (resamples with a single class are skipped)."""
    rng = np.random.default_rng(seed)
    y = np.asarray(y, dtype=bool)
    idx = rng.integers(0, len(y), size=(n_boot, len(y)))  # (B, n)
    yb, pb = y[idx], np.asarray(p)[idx]
    n1 = yb.sum(1)
    n0 = len(y) - n1
    ok = (n1 > 0) & (n0 > 0)
    ranks = rankdata(pb, axis=1)  # (B, n)
    aucs = ((ranks * yb).sum(1) - n1 * (n1 + 1) / 2) / np.where(ok, n1 * n0, 1)
    lo, hi = np.quantile(aucs[ok], [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((np.asarray(p) - np.asarray(y)) ** 2))


def logistic_fit(lp: np.ndarray, y: np.ndarray, *, fix_slope: bool = False, iters: int = 50) -> tuple[float, float]:
    """Newton-Raphson for logit P(y) = a + b * lp; returns (a, b). With fix_slope, b = 1 (offset)."""
    lp, y = np.asarray(lp, dtype=float), np.asarray(y, dtype=float)
    a, b = 0.0, 1.0
    for _ in range(iters):
        eta = a + b * lp
        mu = 1 / (1 + np.exp(-eta))
        w = mu * (1 - mu) + 1e-12
        if fix_slope:
            step_a = (y - mu).sum() / w.sum()
            a += step_a
            if abs(step_a) < 1e-12:
                break
            continue
        g = np.array([(y - mu).sum(), ((y - mu) * lp).sum()])
        h = np.array([[w.sum(), (w * lp).sum()], [(w * lp).sum(), (w * lp * lp).sum()]])
        step = np.linalg.solve(h, g)
        a, b = a + step[0], b + step[1]
        if np.abs(step).max() < 1e-12:
            break
    return float(a), float(b)


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-12, 1 - 1e-12)
    return np.log(p / (1 - p))


def summarise(y: np.ndarray, p: np.ndarray, *, seed: int) -> dict:
    """Counts, AUROC (+95% bootstrap CI), Brier, calibration slope and intercept of predictions p."""
    y = np.asarray(y, dtype=int)
    events = int(y.sum())
    out: dict = {"n": int(len(y)), "events": events, "observed_rate": _r(events / len(y)) if len(y) else None,
                 "mean_predicted": _r(float(np.mean(p))) if len(y) else None, "brier": _r(brier(y, p)) if len(y) else None}
    if events < MIN_CLASS or len(y) - events < MIN_CLASS:
        out.update(auroc=None, auroc_ci=None, calibration_slope=None, calibration_intercept=None,
                   note=f"fewer than {MIN_CLASS} events or non-events: AUROC and calibration not estimated")
        return out
    lp = logit(p)
    out["auroc"] = _r(auroc(y, p))
    out["auroc_ci"] = [_r(v) for v in bootstrap_auroc(y, p, seed=seed)]
    out["calibration_slope"] = _r(logistic_fit(lp, y)[1])
    out["calibration_intercept"] = _r(logistic_fit(lp, y, fix_slope=True)[0])
    return out


def _r(v: float) -> float:
    """Round for the JSON record; 6 decimals are far below the sampling error of any number here."""
    return round(float(v), 6) if v is not None and math.isfinite(v) else v


# ---- repeated cross-validation ------------------------------------------------------------------
# The protocol behind every shipped artifact (models/train.py): repeated stratified k-fold CV gives
# the primary performance figures; a more complex candidate must beat the penalised logistic model in
# a paired comparison on the same folds (corrected resampled t-test) before it can be shipped.


def stratified_folds(y: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """`k` disjoint test-index arrays covering every row, each with the outcome rate of `y`."""
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    for cls in (0, 1):
        idx = rng.permutation(np.flatnonzero(np.asarray(y) == cls))
        for i, chunk in enumerate(np.array_split(idx, k)):
            folds[i] += chunk.tolist()
    return [np.sort(np.array(f, dtype=int)) for f in folds]


def repeated_stratified_folds(y: np.ndarray, k: int = 5, repeats: int = 5, seed: int = 0) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """(repeat, fold, train indices, test indices) for `repeats` x `k`-fold stratified CV."""
    n = len(y)
    out = []
    for r in range(repeats):
        for f, test in enumerate(stratified_folds(y, k, seed + 1000 * (r + 1))):
            train = np.setdiff1d(np.arange(n), test, assume_unique=True)
            out.append((r, f, train, test))
    return out


def fold_metrics(y: np.ndarray, p: np.ndarray) -> dict:
    """AUROC, Brier, calibration slope and intercept of one held-out fold (no bootstrap)."""
    y = np.asarray(y, dtype=int)
    lp = logit(p)
    return {"auroc": auroc(y, p), "brier": brier(y, p), "calibration_slope": logistic_fit(lp, y)[1],
            "calibration_intercept": logistic_fit(lp, y, fix_slope=True)[0]}


def corrected_t(values: np.ndarray, test_fraction: float, level: float = 0.95) -> dict:
    """Mean of per-fold values with the Nadeau-Bengio corrected resampled t interval.

    Folds of repeated CV share training rows, so the plain variance of the mean is too small; the
    correction multiplies it by (1/J + n_test/n_train) instead of 1/J (Nadeau C, Bengio Y. Machine
    Learning 2003;52:239-81; Bouckaert RR, Frank E. PAKDD 2004). Returns mean, SD, CI, and the
    one-sided p-value for mean > 0 (used for paired differences).
    """
    from scipy.stats import t as student_t

    v = np.asarray(values, dtype=float)
    j = len(v)
    mean, sd = float(v.mean()), float(v.std(ddof=1))
    se = math.sqrt((1 / j + test_fraction / (1 - test_fraction)) * sd * sd)
    q = float(student_t.ppf(1 - (1 - level) / 2, j - 1))
    p_greater = float(student_t.sf(mean / se, j - 1)) if se > 0 else (0.0 if mean > 0 else 1.0)
    return {"mean": _r(mean), "sd": _r(sd), "ci": [_r(mean - q * se), _r(mean + q * se)], "p_one_sided": _r(p_greater), "folds": j}


def summarise_folds(per_fold: list[dict], test_fraction: float) -> dict:
    """Each metric across folds: mean, SD and corrected 95% CI."""
    keys = ("auroc", "brier", "calibration_slope", "calibration_intercept")
    return {k: {kk: vv for kk, vv in corrected_t(np.array([m[k] for m in per_fold]), test_fraction).items() if kk != "p_one_sided"}
            for k in keys}
