"""CKD-EPI 2021 race-free creatinine eGFR (Inker 2021) against published calculator values."""
import math

import pytest

from cds_testing.equation_helpers import vector
from models.equations.ckd_epi import CkdEpi2021, egfr
from models.registry import EQUATIONS

UMOL = 88.42


@pytest.mark.parametrize("creat_umol, age, female, expected", [
    # pharmaverse/admiral tests (compute_egfr, method CKD-EPI), 4 decimals: reproduced only with 88.42
    (96.3, 55, False, 80.2293),
    (70, 52, True, 89.7175),
    (77, 67, False, 94.5453),
    (65, 76, True, 84.4646),
])
def test_matches_published_values_to_four_decimals(creat_umol, age, female, expected):
    assert round(egfr(creat_umol / UMOL, age, female), 4) == expected


@pytest.mark.parametrize("creat_mg, age, female, expected", [
    (1.09, 55, False, 80),        # NKF CKD-EPI 2021 calculator (cited in admiral's tests)
    (85 / UMOL, 65, True, 66),    # same calculator, 85 µmol/L
])
def test_matches_nkf_calculator_rounded(creat_mg, age, female, expected):
    assert round(egfr(creat_mg, age, female)) == expected


def test_female_50_creatinine_1_by_hand():
    """142 × (1.0/0.7)^-1.200 × 0.9938^50 × 1.012 (Scr above κ: only the -1.200 branch)."""
    by_hand = 142 * (1.0 / 0.7) ** -1.2 * 0.9938 ** 50 * 1.012
    assert egfr(1.0, 50, True) == pytest.approx(by_hand, rel=1e-12)
    assert round(by_hand, 1) == 68.6


def test_kappa_is_the_kink():
    """At Scr = κ both power terms are 1: eGFR = 142 × 0.9938^age (× 1.012 for women)."""
    assert egfr(0.7, 40, True) == pytest.approx(142 * 0.9938 ** 40 * 1.012)
    assert egfr(0.9, 40, False) == pytest.approx(142 * 0.9938 ** 40)
    # below κ the alpha branch applies: lower creatinine, higher eGFR, by (Scr/κ)^α
    assert egfr(0.5, 40, False) == pytest.approx(142 * (0.5 / 0.9) ** -0.302 * 0.9938 ** 40)


def test_prediction_contributions_add_up_on_log_scale():
    model = EQUATIONS["ckd-epi-2021"]()
    p = model.predict(vector(age=70, female=1, creatinine=1.4))
    assert p.model == "ckd-epi-2021" and p.version
    assert p.baseline == pytest.approx(math.log(142))
    assert p.baseline + sum(p.contributions.values()) == pytest.approx(p.linear_predictor)
    assert math.exp(p.linear_predictor) == pytest.approx(p.score)
    assert p.score == pytest.approx(egfr(1.4, 70, True))
    assert model.predict_values([70, 1, 1.4]) == pytest.approx(p.score)


def test_refuses_children_missing_and_impossible_inputs():
    model = CkdEpi2021()
    with pytest.raises(ValueError):
        model.predict(vector(age=17, female=0, creatinine=1.0))
    with pytest.raises(ValueError):
        model.predict(vector(age=50, female=0, creatinine=None))
    with pytest.raises(ValueError):
        egfr(0, 50, False)
