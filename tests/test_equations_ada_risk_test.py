"""ADA Diabetes Risk Test (Bang 2009; ADA/CDC point table): every band edge and item, checked against the
published table: age < 40 / 40-49 / 50-59 / >= 60 → 0/1/2/3; man 1; gestational diabetes 1; family history 1;
high blood pressure 1; not physically active 1; BMI < 25 / 25-29 / 30-39 / >= 40 → 0/1/2/3 (Asian American:
< 23 / 23-27 / 28-36 / >= 37); 5 or more is high risk."""
import pytest

from cds_testing.equation_helpers import vector
from models.equations.ada_risk_test import HIGH_RISK, AdaRiskTest
from models.registry import EQUATIONS

NONE = dict(gdm_history=0, family_history=0, hypertension=0, physically_inactive=0, asian=0)


def score(**kw):
    x = {"age": 30, "female": 1, "bmi": 22, **NONE, **kw}
    return AdaRiskTest().predict(vector(**x))


@pytest.mark.parametrize("age, points", [(39, 0), (40, 1), (49, 1), (50, 2), (59, 2), (60, 3), (85, 3)])
def test_age_bands(age, points):
    assert score(age=age).contributions["age"] == points == score(age=age).score


@pytest.mark.parametrize("bmi, points", [(24.9, 0), (25, 1), (29.9, 1), (30, 2), (39.9, 2), (40, 3)])
def test_bmi_bands(bmi, points):
    assert score(bmi=bmi).contributions["bmi"] == points


@pytest.mark.parametrize("bmi, points", [(22.9, 0), (23, 1), (27.9, 1), (28, 2), (36.9, 2), (37, 3)])
def test_bmi_bands_for_asian_american_people(bmi, points):
    assert score(bmi=bmi, asian=1).contributions["bmi"] == points


@pytest.mark.parametrize("item", ["family_history", "hypertension", "physically_inactive", "gdm_history"])
def test_each_yes_no_item_is_one_point(item):
    p = score(**{item: 1})
    assert p.score == 1 and p.contributions[item] == 1 and p.baseline == 0 and p.linear_predictor == 1


def test_man_scores_one_and_gestational_diabetes_only_counts_for_women():
    assert score(female=0).score == 1
    assert score(female=0, gdm_history=1).score == 1


def test_maximum_and_high_risk_threshold():
    top = score(age=65, female=0, bmi=41, family_history=1, hypertension=1, physically_inactive=1)
    assert top.score == 10  # the gestational item is for women, the sex point for men: 10 either way
    woman = score(age=65, bmi=41, gdm_history=1, family_history=1, hypertension=1, physically_inactive=1)
    assert woman.score == 10 and top.details["maximum"] == 10
    assert HIGH_RISK == 5 and score(age=50, bmi=30, hypertension=1).score == 5  # 2 + 2 + 1


def test_missing_items_make_a_lower_bound():
    p = score(age=45, family_history=None, physically_inactive=None, asian=None, bmi=24)
    assert p.score == 1 and p.details["complete"] is False
    assert set(p.details["not_assessed"]) == {"family_history", "physically_inactive", "asian"}
    # without a recorded race the general bands are used: never more points than the Asian bands
    assert score(bmi=24, asian=None).contributions["bmi"] <= score(bmi=24, asian=1).contributions["bmi"]


def test_age_sex_and_bmi_are_required_and_registered():
    with pytest.raises(ValueError, match="bmi"):
        AdaRiskTest().predict(vector(age=50, female=1, bmi=None, **NONE))
    assert EQUATIONS["ada-risk-test"] is AdaRiskTest
