"""Pooled Cohort Equations against the Goff 2013 Table A worked example, plus explanation additivity."""
import math
from datetime import datetime, timezone

import pytest

from fhir_adapters.features import Feature, FeatureVector
from models.equations.pce import COEFFICIENTS, FEATURES, PooledCohortEquations, linear_predictor

# Goff 2013 Table A: age 55, TC 213 mg/dL, HDL 50 mg/dL, untreated SBP 120 mm Hg, non-smoker, no diabetes.
# Published 10-year risks (%), printed to one decimal.
TABLE_A = [
    ("white_female", 1, 0, 2.1),
    ("black_female", 1, 1, 3.0),
    ("white_male", 0, 0, 5.3),
    ("black_male", 0, 1, 6.1),
]


def vector(**values):
    feats = tuple(Feature(n, n, float(values[n])) for n in FEATURES)
    return FeatureVector(feats, datetime(2026, 1, 1, tzinfo=timezone.utc))


@pytest.mark.parametrize("group,female,black,published", TABLE_A)
def test_goff_table_a_worked_example(group, female, black, published):
    m = PooledCohortEquations()
    risk = 100 * m.predict_values([55, female, black, 213, 50, 120, 0, 0, 0])
    # Table A rounds the individual sum to 2 decimals before exponentiating: allow 0.1 percentage point.
    assert abs(risk - published) <= 0.1


@pytest.mark.parametrize("group,sum_published", [("white_female", -29.67), ("black_female", 86.16),
                                                  ("white_male", 60.69), ("black_male", 18.97)])
def test_goff_table_a_individual_sums(group, sum_published):
    """Table A prints the individual sum of coefficient × value for each group."""
    lp = linear_predictor(COEFFICIENTS[group], 55, 213, 50, 120, 0, 0, 0)
    assert abs(lp - sum_published) < 0.01


def test_treated_sbp_smoker_and_diabetes_raise_risk():
    m = PooledCohortEquations()
    base = m.predict_values([60, 0, 0, 200, 45, 140, 0, 0, 0])
    assert m.predict_values([60, 0, 0, 200, 45, 140, 1, 0, 0]) > base
    assert m.predict_values([60, 0, 0, 200, 45, 140, 0, 1, 0]) > base
    assert m.predict_values([60, 0, 0, 200, 45, 140, 0, 0, 1]) > base


@pytest.mark.parametrize("female,black", [(1, 0), (1, 1), (0, 0), (0, 1)])
def test_contributions_add_up_to_the_linear_predictor(female, black):
    p = PooledCohortEquations().predict(vector(age=67, female=female, black=black, total_cholesterol=250, hdl=38,
                                               sbp=152, bp_treated=1, smoker=1, diabetes=1))
    assert math.isclose(p.baseline + sum(p.contributions.values()), p.linear_predictor, abs_tol=1e-9)
    # Baseline is the reference profile's linear predictor (age 55, optimal risk factors).
    c = COEFFICIENTS[p.details["equation"]]
    assert math.isclose(p.baseline, linear_predictor(c, 55, 170, 50, 110, 0, 0, 0), abs_tol=1e-9)
    assert p.contributions["smoker"] > 0 and p.contributions["diabetes"] > 0


def test_missing_required_input_is_refused():
    feats = list(vector(age=60, female=1, black=0, total_cholesterol=200, hdl=50, sbp=120, bp_treated=0, smoker=0, diabetes=0).features)
    feats[4] = Feature("hdl", "hdl", None)
    with pytest.raises(ValueError, match="hdl"):
        PooledCohortEquations().predict(FeatureVector(tuple(feats), datetime(2026, 1, 1, tzinfo=timezone.utc)))


def shapley_by_enumeration(c, x):
    """The definition: every coalition of the 7 risk factors (2^7 linear predictors), weighted."""
    from itertools import combinations

    from models.equations.pce import REFERENCE, RISK_FACTORS

    n = len(RISK_FACTORS)

    def lp_of(subset):
        v = {k: (x[k] if k in subset else REFERENCE[k]) for k in RISK_FACTORS}
        return linear_predictor(c, v["age"], v["total_cholesterol"], v["hdl"], v["sbp"], v["bp_treated"], v["smoker"],
                                v["diabetes"])

    out = {}
    for name in RISK_FACTORS:
        others = [m for m in RISK_FACTORS if m != name]
        out[name] = sum(math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n)
                        * (lp_of(set(s) | {name}) - lp_of(set(s)))
                        for k in range(n) for s in combinations(others, k))
    return out


def test_closed_form_shapley_equals_the_enumeration_on_random_patients():
    """The closed form (sum over the predictor's product terms) gives the enumeration's values, in every
    coefficient group, including the three-way treated x ln age x ln SBP term of the black female equation."""
    import random

    from models.equations.pce import shapley_values

    rng = random.Random(17)
    for _ in range(300):
        x = {"age": rng.uniform(40, 79), "total_cholesterol": rng.uniform(130, 320), "hdl": rng.uniform(20, 100),
             "sbp": rng.uniform(90, 200), "bp_treated": rng.choice([0.0, 1.0]), "smoker": rng.choice([0.0, 1.0]),
             "diabetes": rng.choice([0.0, 1.0])}
        for group_name, c in COEFFICIENTS.items():
            fast, slow = shapley_values(c, x), shapley_by_enumeration(c, x)
            assert fast.keys() == slow.keys()
            for name in slow:
                assert math.isclose(fast[name], slow[name], rel_tol=1e-9, abs_tol=1e-9), (group_name, name, x)
