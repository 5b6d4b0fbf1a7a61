"""Contributions on a score's own scale (models/score_scale.py): what the explanation page shows a clinician."""
from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest

from models.equations.ckd_epi import CkdEpi2021
from models.equations.pce import REFERENCE, PooledCohortEquations
from models.feature_vector import Feature, FeatureVector
from models.score_scale import EXACT_UP_TO, Band, score_terms


def _vector(**values) -> FeatureVector:
    return FeatureVector(tuple(Feature(k, k, v) for k, v in values.items()), datetime(2026, 1, 1, tzinfo=timezone.utc))


def test_points_are_the_items_themselves():
    t = score_terms("identity", 4.0, 4.0, 0.0, {"age": 2.0, "female": 1.0, "chf": 0.0, "hypertension": 1.0})
    assert t.kind == "difference" and t.reference == 0.0
    assert t.changes[0] == ("age", 2.0) and dict(t.changes)["chf"] == 0.0


def test_logit_shares_add_up_to_the_difference_in_risk_whatever_the_order():
    contributions = {"a": 1.2, "b": -0.4, "c": 0.7, "d": 0.0}
    baseline = -2.0
    lp = baseline + sum(contributions.values())
    score = 1 / (1 + math.exp(-lp))
    t = score_terms("logit", score, lp, baseline, contributions)
    assert t.reference == pytest.approx(1 / (1 + math.exp(-baseline)))
    assert sum(v for _, v in t.changes) == pytest.approx(score - t.reference, abs=1e-12)
    shares = dict(t.changes)
    assert shares["d"] == 0.0 and shares["b"] < 0 < shares["c"] < shares["a"]
    assert [k for k, _ in t.changes] == ["a", "c", "b", "d"]  # largest effect first
    reordered = score_terms("logit", score, lp, baseline, dict(reversed(list(contributions.items()))))
    assert dict(reordered.changes) == pytest.approx(shares)
    # Two equal terms get equal shares (symmetry), and one term alone gets the whole difference.
    twins = dict(score_terms("logit", score, lp, baseline, {"x": 0.5, "y": 0.5, "z": lp - baseline - 1.0}).changes)
    assert twins["x"] == pytest.approx(twins["y"])
    alone = score_terms("logit", score, lp, baseline, {"only": lp - baseline})
    assert alone.changes[0][1] == pytest.approx(score - alone.reference)


def test_pooled_cohort_equations_reference_is_the_reference_profiles_own_risk():
    """cloglog: the offset ln(-ln S10) - mean is recovered from the prediction, so the reference risk equals
    what the equations give the declared reference profile of the same sex and race group."""
    model = PooledCohortEquations()
    p = model.predict(_vector(age=74, female=1, black=0, total_cholesterol=283, hdl=54, sbp=142, bp_treated=1, smoker=1, diabetes=0))
    t = score_terms(model.info.link, p.score, p.linear_predictor, p.baseline, p.contributions)
    reference = model.predict_values([REFERENCE["age"], 1, 0, REFERENCE["total_cholesterol"], REFERENCE["hdl"], REFERENCE["sbp"],
                                      REFERENCE["bp_treated"], REFERENCE["smoker"], REFERENCE["diabetes"]])
    assert t.reference == pytest.approx(reference, rel=1e-9)
    assert sum(v for _, v in t.changes) == pytest.approx(p.score - reference, abs=1e-12)
    assert dict(t.changes)["age"] > 0.05  # a 74-year-old's age adds percentage points, not log-hazard units


def test_product_equations_are_read_as_factors():
    model = CkdEpi2021()
    p = model.predict(_vector(age=67, female=1, creatinine=2.2))
    t = score_terms(model.info.link, p.score, p.linear_predictor, p.baseline, p.contributions)
    assert t.kind == "factor" and t.reference == pytest.approx(142.0)
    assert t.reference * math.prod(v for _, v in t.changes) == pytest.approx(p.score)
    assert dict(t.changes)["creatinine"] < 1 and dict(t.changes)["female"] == pytest.approx(1.012)


def test_many_inputs_share_the_difference_in_proportion():
    contributions = {f"x{i}": 0.1 * (i + 1) for i in range(EXACT_UP_TO + 1)}
    lp = sum(contributions.values()) - 3.0
    t = score_terms("logit", 1 / (1 + math.exp(-lp)), lp, -3.0, contributions)
    assert sum(v for _, v in t.changes) == pytest.approx(1 / (1 + math.exp(-lp)) - t.reference)


def test_unknown_link_and_band_edges():
    with pytest.raises(ValueError, match="unknown link"):
        score_terms("probit", 0.1, 0.0, 0.0, {})
    band = Band(0.05, 0.075, "borderline")
    assert band.holds(0.05) and not band.holds(0.075) and Band(None, 15, "G5").holds(3) and Band(90, None, "G1").holds(120)
