"""UCUM conversion through pint: per-analyte mass ↔ molar factors, creatinine by 88.42,
lb ↔ kg, in ↔ cm, °F ↔ °C, scaled counts and annotations."""
import pytest

from fhir_adapters.units import UnitError, convert, to_pint


@pytest.mark.parametrize("value,unit,target,expected", [
    (200, "[lb_av]", "kg", 90.718474),
    (90.718474, "kg", "[lb_av]", 200),
    (70, "[in_i]", "cm", 177.8),
    (177.8, "cm", "[in_i]", 70),
    (98.6, "[degF]", "Cel", 37.0),
    (37.0, "Cel", "[degF]", 98.6),
    (1.1, "g/L", "mg/dL", 110),
    (7.2, "10*3/uL", "10*9/L", 7.2),
    (72, "{beats}/min", "/min", 72),
    (120, "mmHg", "mm[Hg]", 120),
])
def test_dimensional_conversions(value, unit, target, expected):
    assert convert(value, unit, target) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("value,unit,target,analyte,expected", [
    (5.0, "mmol/L", "mg/dL", "cholesterol", 193.325),     # 386.65 g/mol
    (193.325, "mg/dL", "mmol/L", "cholesterol", 5.0),
    (5.5, "mmol/L", "mg/dL", "glucose", 99.088),          # 180.16 g/mol
    (88.42, "umol/L", "mg/dL", "creatinine", 1.0),        # CKD-EPI 2021: 88.42 µmol/L per mg/dL
    (88.42, "µmol/L", "mg/dL", "creatinine", 1.0),
    (1.0, "mg/dL", "umol/L", "creatinine", 88.42),
    (0.08842, "mmol/L", "mg/dL", "creatinine", 1.0),
    (1.1, "g/L", "mmol/L", "glucose", 6.10568),           # mass unit converted by pint first
])
def test_mass_molar_conversions_per_analyte(value, unit, target, analyte, expected):
    assert convert(value, unit, target, analyte=analyte) == pytest.approx(expected, rel=1e-4)


def test_explicit_per_unit_factors_still_work():
    assert convert(5.0, "mmol/L", "mg/dL", {"mmol/L": 0.02586}) == pytest.approx(193.35, rel=1e-4)
    assert convert(88.42, "umol/L", "mg/dL", {"umol/L": 88.42}) == pytest.approx(1.0)
    assert convert(5000, "umol/L", "mg/dL", {"mmol/L": 0.02586}) == pytest.approx(193.35, rel=1e-4)  # via mmol/L


def test_mass_to_molar_without_an_analyte_is_refused():
    with pytest.raises(UnitError):
        convert(200, "mg/dL", "mmol/L")
    with pytest.raises(UnitError):
        convert(1, "kg", "cm")
    with pytest.raises(UnitError):
        convert(1, "mg/dL", "mmol/L", analyte="unobtainium")


def test_missing_unit_is_taken_as_the_declared_unit():
    assert convert(5.0, None, "mg/dL") == 5.0 and convert(5.0, "", "mg/dL") == 5.0


@pytest.mark.parametrize("ucum,expected", [("10*3/uL", (1000.0, "1/uL")), ("{beats}/min", (1.0, "1/min")),
                                           ("mL/min/{1.73_m2}", (1.0, "mL/min")), ("kg/m2", (1.0, "kg/m**2")),
                                           ("Cel", (1.0, "degC")), ("[lb_av]", (1.0, "lb"))])
def test_ucum_codes_translate_to_pint(ucum, expected):
    assert to_pint(ucum) == expected


@pytest.mark.parametrize("ucum, shown", [
    ("a", "years"), ("mm[Hg]", "mm Hg"), ("Cel", "°C"), ("[degF]", "°F"), ("{#}", ""), ("{score}", "points"),
    ("kg/m2", "kg/m²"), ("mL/min/{1.73_m2}", "mL/min/1.73 m²"), ("umol/L", "µmol/L"), ("10*3/uL", "× 10³/µL"),
    ("{beats}/min", "/min"), ("/min", "/min"), ("[IU]/L", "IU/L"), ("mg/dL", "mg/dL"), ("%", "%"), (None, ""),
])
def test_units_as_a_clinician_reads_them(ucum, shown):
    from fhir_adapters.units import unit_text

    assert unit_text(ucum) == shown


def test_cards_show_values_through_the_one_unit_function(app):
    """A card's value goes through `unit_text`: 38.6 Cel is 38.6 °C, 74 a is 74 years, a count has no unit."""
    from cds_service.builders.base import display_value
    from models.feature_vector import Feature

    ctx = type("Ctx", (), {"service": app.extensions["cds"].services["ascvd-10y-risk"][0].definition})()
    assert display_value(ctx, Feature("t", "Temperature", 38.6, "Cel")) == "38.6 °C"
    assert display_value(ctx, Feature("x", "Age", 74.0, "a")) == "74 years"
    assert display_value(ctx, Feature("n", "Results", 3.0, "{#}")) == "3"
