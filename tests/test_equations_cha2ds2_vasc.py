"""CHA2DS2-VASc (Lip 2010): points by construction at every boundary."""
import pytest

from cds_testing.equation_helpers import vector
from models.equations.cha2ds2_vasc import ADJUSTED_STROKE_RATE, Cha2ds2Vasc

NONE = dict(chf=0, hypertension=0, diabetes=0, stroke_tia=0, vascular_disease=0)


def score(**kw):
    x = {"age": 50, "female": 0, **NONE, **kw}
    return Cha2ds2Vasc().predict(vector(**x))


@pytest.mark.parametrize("age, points", [(64, 0), (65, 1), (74, 1), (75, 2), (90, 2)])
def test_age_bands_are_exclusive(age, points):
    assert score(age=age).score == points
    assert score(age=age).contributions["age"] == points


@pytest.mark.parametrize("item, points", [("chf", 1), ("hypertension", 1), ("diabetes", 1), ("stroke_tia", 2),
                                          ("vascular_disease", 1), ("female", 1)])
def test_each_item_alone(item, points):
    p = score(**{item: 1})
    assert p.score == points and p.contributions[item] == points
    assert sum(p.contributions.values()) == p.linear_predictor == p.score and p.baseline == 0


def test_maximum_is_nine_and_rate_table():
    p = score(age=80, female=1, chf=1, hypertension=1, diabetes=1, stroke_tia=1, vascular_disease=1)
    assert p.score == 9
    assert p.details["adjusted_stroke_rate_pct_per_year"] == ADJUSTED_STROKE_RATE[9] == 15.2
    assert score().details["adjusted_stroke_rate_pct_per_year"] == 0.0


def test_unknown_item_is_a_lower_bound_and_age_sex_are_required():
    p = score(chf=None, hypertension=1)
    assert p.score == 1 and p.details["not_assessed"] == ["chf"] and p.details["complete"] is False
    with pytest.raises(ValueError):
        score(female=None)
    assert Cha2ds2Vasc().predict_values([76, 1, 0, 1, 0, 0, 0]) == 4
