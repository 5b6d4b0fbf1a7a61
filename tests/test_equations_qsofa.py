"""qSOFA (Sepsis-3): each criterion at its boundary, positive at 2."""
import pytest

from cds_testing.equation_helpers import vector
from models.equations.qsofa import QSofa


@pytest.mark.parametrize("rr, sbp, altered, total", [
    (21, 101, 0, 0), (22, 101, 0, 1), (21, 100, 0, 1), (21, 101, 1, 1), (22, 100, 0, 2), (22, 100, 1, 3),
])
def test_criteria_boundaries(rr, sbp, altered, total):
    p = QSofa().predict(vector(resp_rate=rr, sbp=sbp, altered_mentation=altered))
    assert p.score == total == p.linear_predictor and p.baseline == 0
    assert p.details["positive"] is (total >= 2)


def test_missing_criterion_is_named():
    p = QSofa().predict(vector(resp_rate=24, sbp=None, altered_mentation=0))
    assert p.score == 1 and p.details["not_assessed"] == ["sbp"] and p.details["complete"] is False
    assert QSofa().predict_values([22, 90, 0]) == 2
