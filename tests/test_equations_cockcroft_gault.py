"""Cockcroft-Gault creatinine clearance (1976), hand-computed and against the NKF calculator."""
import math

import pytest

from cds_testing.equation_helpers import vector
from models.equations.cockcroft_gault import CockcroftGault, crcl
from models.registry import EQUATIONS


def test_hand_computed():
    assert crcl(1.0, 60, 70, False) == pytest.approx(80 * 70 / 72)            # 77.78 mL/min
    assert crcl(1.0, 60, 70, True) == pytest.approx(80 * 70 / 72 * 0.85)      # 66.11 mL/min
    assert crcl(2.0, 80, 50, False) == pytest.approx(60 * 50 / 144)           # 20.83 mL/min


@pytest.mark.parametrize("creat_mg, age, weight, female, expected", [
    (1.09, 55, 90, False, 97),       # NKF CrCl calculator values cited in pharmaverse/admiral tests
    (85 / 88.42, 65, 60, True, 55),
])
def test_matches_nkf_calculator_rounded(creat_mg, age, weight, female, expected):
    assert round(crcl(creat_mg, age, weight, female)) == expected


def test_prediction_contributions_add_up_on_log_scale():
    model = EQUATIONS["cockcroft-gault-1976"]()
    p = model.predict(vector(age=80, female=0, creatinine=2.4, weight=58))
    assert p.baseline == pytest.approx(-math.log(72))
    assert p.baseline + sum(p.contributions.values()) == pytest.approx(p.linear_predictor)
    assert p.score == pytest.approx((140 - 80) * 58 / (72 * 2.4))
    assert model.predict_values([80, 0, 2.4, 58]) == pytest.approx(p.score)


def test_refuses_missing_and_impossible_inputs():
    with pytest.raises(ValueError):
        CockcroftGault().predict(vector(age=80, female=0, creatinine=2.4, weight=None))
    with pytest.raises(ValueError):
        crcl(1.0, 140, 70, False)
    with pytest.raises(ValueError):
        crcl(1.0, 60, 0, False)
