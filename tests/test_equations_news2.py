"""NEWS2 (RCP 2017 Chart 1/2): every band edge, Scale 2, aggregate and missing parameters."""
import pytest

from cds_testing.equation_helpers import vector
from models.equations import news2 as N

NORMAL = dict(resp_rate=16, spo2=97, on_oxygen=0, hypercapnic_target=0, sbp=120, pulse=70, consciousness=0, temperature=37.0)


def score(**kw):
    return N.News2().predict(vector(**{**NORMAL, **kw}))


@pytest.mark.parametrize("rr, pts", [(8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (20.4, 0), (20.5, 2)])
def test_respiration_rate(rr, pts):
    assert score(resp_rate=rr).contributions["resp_rate"] == pts


@pytest.mark.parametrize("spo2, pts", [(91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)])
def test_spo2_scale1(spo2, pts):
    assert score(spo2=spo2).contributions["spo2"] == pts


@pytest.mark.parametrize("spo2, oxygen, pts", [
    (83, 0, 3), (84, 0, 2), (85, 0, 2), (86, 0, 1), (87, 0, 1), (88, 0, 0), (92, 0, 0), (93, 0, 0), (99, 0, 0),
    (92, 1, 0), (93, 1, 1), (94, 1, 1), (95, 1, 2), (96, 1, 2), (97, 1, 3),
])
def test_spo2_scale2(spo2, oxygen, pts):
    p = score(spo2=spo2, on_oxygen=oxygen, hypercapnic_target=1)
    assert p.contributions["spo2"] == pts and p.details["spo2_scale"] == 2


def test_scale2_needs_oxygen_status_above_92():
    p = score(spo2=95, on_oxygen=None, hypercapnic_target=1)
    assert "spo2" in p.details["not_assessed"] and "on_oxygen" in p.details["not_assessed"]
    assert score(spo2=95, hypercapnic_target=None).details["spo2_scale"] == 1  # unknown target → Scale 1


@pytest.mark.parametrize("sbp, pts", [(90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3)])
def test_systolic(sbp, pts):
    assert score(sbp=sbp).contributions["sbp"] == pts


@pytest.mark.parametrize("pulse, pts", [(40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2), (130, 2), (131, 3)])
def test_pulse(pulse, pts):
    assert score(pulse=pulse).contributions["pulse"] == pts


@pytest.mark.parametrize("temp, pts", [(35.0, 3), (35.05, 1), (35.1, 1), (36.0, 1), (36.04, 1), (36.1, 0), (38.0, 0),
                                       (38.1, 1), (39.0, 1), (39.1, 2)])
def test_temperature_rounded_to_one_decimal(temp, pts):
    assert score(temperature=temp).contributions["temperature"] == pts


def test_oxygen_and_consciousness():
    assert score(on_oxygen=1).contributions["on_oxygen"] == 2
    assert score(consciousness=1).contributions["consciousness"] == 3


def test_aggregate_and_single_parameter():
    p = score(resp_rate=23, spo2=93, sbp=98, pulse=112, consciousness=1, temperature=38.4)
    assert p.score == 2 + 2 + 2 + 2 + 3 + 1 and p.linear_predictor == p.score
    assert p.details["max_parameter_points"] == 3
    assert score().score == 0 and score().details["complete"] is True


def test_missing_parameters_are_named_not_normal():
    p = score(resp_rate=None, temperature=None)
    assert p.details["not_assessed"] == ["resp_rate", "temperature"] and p.details["complete"] is False
    assert p.details["assessed"] == 5
    assert N.News2().predict_values([16, 97, 0, 0, 120, 70, 0, 37.0]) == 0
