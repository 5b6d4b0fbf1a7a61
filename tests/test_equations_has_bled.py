"""HAS-BLED (Pisters 2010): each item's published definition at its boundary."""
import pytest

from cds_testing.equation_helpers import vector
from models.equations.has_bled import FEATURES, HasBled

NEG = dict(age=50, sbp=120, renal_disease=0, creatinine=1.0, liver_disease=0, bilirubin_uln=1.0, liver_enzymes_uln=1.0,
           stroke=0, bleeding=0, inr_ttr=80, on_vka=1, antiplatelet_nsaid=0, alcohol=0)


def score(**kw):
    return HasBled().predict(vector(**{**NEG, **kw}))


def test_all_negative_is_zero_and_complete():
    p = score()
    assert p.score == 0 and p.details["complete"] is True and p.baseline == 0


@pytest.mark.parametrize("kw, item, points", [
    (dict(sbp=160), "uncontrolled_hypertension", 0), (dict(sbp=161), "uncontrolled_hypertension", 1),
    (dict(creatinine=2.26), "abnormal_renal", 0),                      # 199.8 µmol/L
    (dict(creatinine=200 / 88.42), "abnormal_renal", 1),               # exactly 200 µmol/L
    (dict(renal_disease=1), "abnormal_renal", 1),
    (dict(liver_disease=1), "abnormal_liver", 1),
    (dict(bilirubin_uln=2.0, liver_enzymes_uln=4), "abnormal_liver", 0),   # bilirubin must exceed 2× ULN
    (dict(bilirubin_uln=2.1, liver_enzymes_uln=3.0), "abnormal_liver", 0),  # enzymes must exceed 3× ULN
    (dict(bilirubin_uln=2.1, liver_enzymes_uln=3.1), "abnormal_liver", 1),
    (dict(stroke=1), "stroke", 1), (dict(bleeding=1), "bleeding", 1),
    (dict(inr_ttr=60), "labile_inr", 0), (dict(inr_ttr=59.9), "labile_inr", 1),
    (dict(age=65), "elderly", 0), (dict(age=66), "elderly", 1),
    (dict(antiplatelet_nsaid=1), "drugs", 1), (dict(alcohol=1), "alcohol", 1),
])
def test_item_boundaries(kw, item, points):
    p = score(**kw)
    assert p.contributions[item] == points and p.score == points


@pytest.mark.parametrize("on_vka, ttr, points, assessed", [
    (1, 40, 1, True), (1, None, 0, False),     # on warfarin: TTR decides; unknown TTR is not assessed
    (0, 40, 0, True), (0, None, 0, True),      # "labile INRs (if on warfarin)": not on a VKA scores 0
    (None, 40, 1, True), (None, None, 0, False),
])
def test_labile_inr_only_on_a_vitamin_k_antagonist(on_vka, ttr, points, assessed):
    p = score(on_vka=on_vka, inr_ttr=ttr)
    assert p.contributions["labile_inr"] == points
    assert ("labile_inr" not in p.details["not_assessed"]) is assessed


def test_maximum_nine():
    assert score(sbp=180, renal_disease=1, liver_disease=1, stroke=1, bleeding=1, inr_ttr=40, age=70,
                 antiplatelet_nsaid=1, alcohol=1).score == 9


def test_unknown_inputs_never_count_as_negative():
    p = score(sbp=None, inr_ttr=None, creatinine=None)
    assert p.score == 0
    assert set(p.details["not_assessed"]) == {"uncontrolled_hypertension", "labile_inr", "abnormal_renal"}
    # a positive input decides an OR item even when the other input is unknown
    p = score(renal_disease=1, creatinine=None)
    assert p.contributions["abnormal_renal"] == 1 and "abnormal_renal" not in p.details["not_assessed"]
    with pytest.raises(ValueError):
        score(age=None)
    assert HasBled().predict_values([NEG[n] for n in FEATURES]) == 0
