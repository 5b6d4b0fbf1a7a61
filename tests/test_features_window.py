"""The general feature engine: windowed kinds, BMI, ethnicity, BP components,
referenced medications, implausible values and provenance. Pure functions: no app, no HTTP."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from types import MappingProxyType

import pytest

from cds_testing.fhir_factory import LOINC, RXNORM, SNOMED, bp_panel, condition, med_request, patient, quantity_obs
from fhir_adapters.features import EXTRACTORS, KIND_CHECKS, ExtractionContext, FeatureDef, extract
from hooks.loader import ServiceFileError, parse_feature

AS_OF = datetime(2026, 6, 15, 12, 0, tzinfo=timezone.utc)
HBA1C = f"{LOINC}|4548-4"


def fdef(kind, unit=None, source=("data",), **params):
    return FeatureDef(name="f", kind=kind, source=source, label="F", unit=unit, params=MappingProxyType(params))


def run(defn, resources, patient_resource=None, all_resources=None):
    ctx = ExtractionContext(as_of=AS_OF, patient=patient_resource, all_resources=tuple(all_resources or resources))
    return extract([defn], {"data": resources}, ctx)["f"]


def a1c(oid, value, date, unit="%", status="final"):
    return quantity_obs(oid, "4548-4", value, unit, date=date, status=status)


SERIES = [a1c("a1", 7.0, "2024-06-15"), a1c("a2", 7.5, "2025-06-15"), a1c("a3", 8.0, "2026-06-15"),
          a1c("old", 12.0, "2019-01-01"), a1c("future", 5.0, "2026-09-01"), a1c("err", 9.9, "2026-01-01", status="entered-in-error")]


# ---- count / any ----------------------------------------------------------------------------------------


def test_count_within_the_window_skips_old_future_and_voided_records():
    f = run(fdef("count", codes=[HBA1C], lookback_days=500), SERIES)
    assert f.value == 2.0  # a2, a3; not a1 / 'old' (outside), 'future', nor 'err' (entered-in-error)
    assert [e.reference for e in f.evidence] == ["Observation/a3", "Observation/a2"]  # provenance, newest first


def test_count_without_a_window_counts_the_whole_record():
    assert run(fdef("count", codes=[HBA1C]), SERIES).value == 4.0


def test_count_with_a_value_range_uses_converted_plausible_values():
    glucose = [quantity_obs("g1", "2345-7", 3.5, "mmol/L", date="2026-06-01"),   # 63 mg/dL: counted
               quantity_obs("g2", "2345-7", 110, "mg/dL", date="2026-06-02"),
               quantity_obs("g3", "2345-7", 65, "mg/dL", date="2026-06-03"),      # counted
               quantity_obs("g4", "2345-7", 6000, "mg/dL", date="2026-06-04")]    # implausible: left out, recorded
    f = run(fdef("count", "mg/dL", codes=[f"{LOINC}|2345-7"], max_value=69.9, analyte="glucose",
                 plausible=[10, 2000], lookback_days=30), glucose)
    assert f.value == 2.0 and {e.reference for e in f.evidence} == {"Observation/g1", "Observation/g3"}
    assert "Observation/g4" in f.note and "plausible" in f.note


def test_count_is_zero_not_missing_when_nothing_is_recorded():
    f = run(fdef("count", codes=[HBA1C], lookback_days=365), [])
    assert f.value == 0.0 and not f.missing and "none recorded" in f.note


def test_count_and_any_work_on_conditions_and_medications():
    records = [condition("c1", SNOMED, "44054006", onset="2026-01-01"),
               condition("c2", SNOMED, "44054006", onset="2026-02-01", status="resolved"),
               med_request("m1", "860975", "metformin")]
    records[1]["verificationStatus"] = {"coding": [{"code": "refuted"}]}
    assert run(fdef("count", codes=[f"{SNOMED}|44054006"]), records).value == 1.0
    med = run(fdef("any", codes=[f"{RXNORM}|860975"]), records)
    assert med.value == 1.0 and med.evidence[0].reference == "MedicationRequest/m1"
    assert run(fdef("any", codes=[f"{RXNORM}|1"]), records).value == 0.0


def test_count_over_mixed_records_finds_observations_by_code_or_component_and_keeps_record_order():
    """The pool's code index finds the Observations (the code itself or a component's); a Condition carrying
    the same code is matched one by one, as before; records of one day keep the record's order."""
    sbp = f"{LOINC}|8480-6"
    records = [bp_panel("bp1", 150, 90, date="2026-06-01"), quantity_obs("s1", "8480-6", 140, "mm[Hg]", date="2026-06-01"),
               quantity_obs("other", "8462-4", 80, "mm[Hg]", date="2026-06-01"),
               condition("c1", LOINC, "8480-6", onset="2026-06-01"),
               quantity_obs("void", "8480-6", 141, "mm[Hg]", date="2026-06-02", status="entered-in-error")]
    f = run(fdef("count", codes=[sbp], lookback_days=365), records)
    assert [e.reference for e in f.evidence] == ["Observation/bp1", "Observation/s1", "Condition/c1"]


# ---- min / max / mean ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,value,ref", [("min", 7.0, "Observation/a1"), ("max", 8.0, "Observation/a3")])
def test_min_and_max_within_the_window_keep_the_source_result(kind, value, ref):
    f = run(fdef(kind, "%", codes=[HBA1C], lookback_days=800), SERIES)
    assert f.value == value and [e.reference for e in f.evidence] == [ref]
    assert f.evidence[0].date is not None and "of 3 values" in f.note


def test_mean_lists_every_value_it_used():
    f = run(fdef("mean", "%", codes=[HBA1C], lookback_days=800), SERIES)
    assert f.value == pytest.approx(7.5)
    assert [e.reference for e in f.evidence] == ["Observation/a3", "Observation/a2", "Observation/a1"]
    assert "mean of 3 values" in f.note and f.date == "2026-06-15"


def test_mean_missing_when_only_old_values_exist():
    f = run(fdef("mean", "%", codes=[HBA1C], lookback_days=30), [a1c("x", 7, "2020-01-01")])
    assert f.missing and "older than 30 days" in f.note


def test_implausible_values_are_rejected_with_a_recorded_reason():
    temps = [quantity_obs("t1", "8310-5", 98.6, "Cel", date="2026-06-14"),   # °F sent as °C: implausible
             quantity_obs("t2", "8310-5", 37.2, "Cel", date="2026-06-10")]
    f = run(fdef("latest_quantity", "Cel", codes=[f"{LOINC}|8310-5"], plausible=[25, 45]), temps)
    assert f.value == 37.2 and f.evidence[0].reference == "Observation/t2"
    assert "Observation/t1" in f.note and "98.6" in f.note and "plausible range" in f.note
    only_bad = run(fdef("max", "Cel", codes=[f"{LOINC}|8310-5"], plausible=[25, 45]), temps[:1])
    assert only_bad.missing and "no plausible value" in only_bad.note


# ---- trend -------------------------------------------------------------------------------------------------


def test_trend_slope_per_year_by_least_squares():
    egfr = [quantity_obs("e1", "98979-8", 60, "mL/min/{1.73_m2}", date="2024-06-15"),
            quantity_obs("e2", "98979-8", 55, "mL/min/{1.73_m2}", date="2025-06-15"),
            quantity_obs("e3", "98979-8", 50, "mL/min/{1.73_m2}", date="2026-06-15")]
    f = run(fdef("trend", "mL/min/{1.73_m2}", codes=[f"{LOINC}|98979-8"], lookback_days=1000), egfr)
    assert f.value == pytest.approx(-5.0, abs=0.02) and f.unit == "mL/min/{1.73_m2}/a"
    assert [e.reference for e in f.evidence] == ["Observation/e3", "Observation/e2", "Observation/e1"]


def test_trend_difference_first_to_last_with_unit_conversion():
    creat = [quantity_obs("c1", "2160-0", 88.42, "umol/L", date="2026-01-01"),
             quantity_obs("c2", "2160-0", 1.5, "mg/dL", date="2026-06-01")]
    f = run(fdef("trend", "mg/dL", codes=[f"{LOINC}|2160-0"], method="difference", analyte="creatinine"), creat)
    assert f.value == pytest.approx(0.5) and f.unit == "mg/dL"


def test_trend_needs_enough_points_on_different_dates():
    assert run(fdef("trend", "%", codes=[HBA1C], lookback_days=100), SERIES).missing
    f = run(fdef("trend", "%", codes=[HBA1C], min_points=4, lookback_days=800), SERIES)
    assert f.missing and "4 needed" in f.note
    same_day = [a1c("s1", 7, "2026-06-01"), a1c("s2", 8, "2026-06-01")]
    assert "one date" in run(fdef("trend", "%", codes=[HBA1C]), same_day).note


# ---- BMI --------------------------------------------------------------------------------------------------


def test_bmi_uses_a_measured_bmi_when_there_is_one():
    data = [quantity_obs("b", "39156-5", 31.2, "kg/m2", date="2026-05-01"),
            quantity_obs("w", "29463-7", 70, "kg", date="2026-06-01"), quantity_obs("h", "8302-2", 175, "cm", date="2026-06-01")]
    f = run(fdef("bmi", "kg/m2", lookback_days=365), data)
    assert f.value == 31.2 and [e.reference for e in f.evidence] == ["Observation/b"]


def test_bmi_is_derived_from_weight_and_height_when_missing():
    data = [quantity_obs("w", "29463-7", 70, "kg", date="2026-06-01"), quantity_obs("h", "8302-2", 175, "cm", date="2020-01-01")]
    f = run(fdef("bmi", "kg/m2", lookback_days=365), data)
    assert f.value == pytest.approx(70 / 1.75 ** 2)
    assert [e.reference for e in f.evidence] == ["Observation/w", "Observation/h"] and "derived" in f.note


def test_bmi_derivation_converts_pounds_and_inches():
    data = [quantity_obs("w", "29463-7", 154.324, "[lb_av]"), quantity_obs("h", "8302-2", 68.898, "[in_i]")]
    f = run(fdef("bmi", "kg/m2", codes=[f"{LOINC}|39156-5"], height_codes=[f"{LOINC}|8302-2"],
                 weight_codes=[f"{LOINC}|29463-7"]), data)
    assert f.value == pytest.approx(22.86, abs=0.01)


def test_bmi_implausible_height_is_rejected_and_recorded():
    data = [quantity_obs("w", "29463-7", 70, "kg"), quantity_obs("h", "8302-2", 1.75, "cm")]  # metres sent as cm
    f = run(fdef("bmi", "kg/m2"), data)
    assert f.missing and "no height" in f.note and "Observation/h" in f.note


# ---- demographics, BP panel, medications ------------------------------------------------------------------


def _with_ethnicity(code):
    p = patient("p1")
    p["extension"] = [{"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity", "extension": [
        {"url": "ombCategory", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": code}}]}]
    return p


@pytest.mark.parametrize("defn", [fdef("ethnicity", code="2135-2"), fdef("race", code="2135-2", extension="ethnicity")])
def test_ethnicity_from_the_us_core_extension(defn):
    assert run(defn, [], _with_ethnicity("2135-2")).value == 1.0
    assert run(defn, [], _with_ethnicity("2186-5")).value == 0.0
    missing = run(defn, [], patient("p1"))
    assert missing.missing and missing.note == "ethnicity not recorded"


def test_race_missing_note_names_race():
    assert run(fdef("race", code="2054-5"), [], patient("p1")).note == "race not recorded"


@pytest.mark.parametrize("code,value", [("8480-6", 142), ("8462-4", 91)])
def test_bp_components_of_the_85354_9_panel(code, value):
    f = run(fdef("latest_quantity", "mm[Hg]", codes=[f"{LOINC}|{code}"]), [bp_panel("bp", 142, 91)])
    assert f.value == value and f.evidence[0].reference == "Observation/bp"


def _statin_order(**drug):
    return {"resourceType": "MedicationRequest", "id": "mr", "status": "active", "intent": "order",
            "subject": {"reference": "Patient/p1"}, **drug}


ATORVASTATIN = {"coding": [{"system": RXNORM, "code": "83367", "display": "atorvastatin"}]}


def test_medication_from_a_contained_medication():
    order = _statin_order(contained=[{"resourceType": "Medication", "id": "m", "code": ATORVASTATIN}],
                          medicationReference={"reference": "#m"})
    assert run(fdef("medication", codes=[f"{RXNORM}|83367"]), [order]).value == 1.0


def test_medication_from_a_referenced_medication_in_the_record():
    order = _statin_order(medicationReference={"reference": "Medication/med-1"})
    med = {"resourceType": "Medication", "id": "med-1", "code": ATORVASTATIN}
    assert run(fdef("medication", codes=[f"{RXNORM}|83367"]), [order], all_resources=[order, med]).value == 1.0
    assert run(fdef("medication", codes=[f"{RXNORM}|83367"]), [order], all_resources=[order]).value == 0.0


# ---- declarations are checked when the service files load --------------------------------------------------


def _load(raw):
    err = lambda field, msg: ServiceFileError("svc.toml", field, msg)  # noqa: E731
    return parse_feature(0, dict(name="f", source="data", **raw), {"data": None}, err)


@pytest.mark.parametrize("raw,problem", [
    ({"kind": "trend", "codes": [HBA1C], "method": "steepest"}, "method"),
    ({"kind": "mean", "codes": [HBA1C], "analyte": "unobtainium"}, "analyte"),
    ({"kind": "bmi", "height_codes": ["8302-2"]}, "system|code"),
    ({"kind": "count", "codes": [HBA1C], "lookback_days": 0}, "lookback_days"),
])
def test_bad_parameter_values_stop_start_up(raw, problem):
    with pytest.raises(ServiceFileError, match=problem.replace("|", r"\|")):
        _load(raw)


def test_every_new_kind_is_registered_with_a_check():
    for kind in ("count", "any", "min", "max", "mean", "trend", "bmi"):
        assert kind in EXTRACTORS and kind in KIND_CHECKS
    assert _load({"kind": "trend", "codes": [HBA1C], "method": "difference", "unit": "%"}).kind == "trend"


def test_the_shared_code_index_gives_the_same_features_as_a_plain_scan():
    """`extract` shares one Observation index per source; results must not change."""
    data = SERIES + [bp_panel("bp1", 150, 95, date="2026-05-01"), bp_panel("bp2", 130, 85, date="2026-06-01"),
                     quantity_obs("w", "29463-7", 80, "kg"), quantity_obs("h", "8302-2", 180, "cm")]
    defs = [fdef("latest_quantity", "mm[Hg]", codes=[f"{LOINC}|8480-6"]), fdef("max", "mm[Hg]", codes=[f"{LOINC}|8462-4"]),
            fdef("mean", "%", codes=[HBA1C], lookback_days=800), fdef("trend", "%", codes=[HBA1C]), fdef("bmi", "kg/m2"),
            fdef("count", codes=[HBA1C, f"{LOINC}|85354-9"]), fdef("latest_quantity", "%", codes=[f"{LOINC}|4548*"])]
    ctx = ExtractionContext(as_of=AS_OF, all_resources=tuple(data))
    for d in defs:
        indexed = extract([d], {"data": data}, ctx)["f"]
        plain = EXTRACTORS[d.kind](d, list(data), ctx)
        assert indexed == plain, d.kind


# ---- work shared within one extraction -------------------------------------------------------------------


GLUCOSE = f"{LOINC}|2345-7"


def named(name, kind, unit=None, **params):
    return FeatureDef(name=name, kind=kind, source=("data",), label=name, unit=unit, params=MappingProxyType(params))


def test_features_reading_the_same_codes_keep_their_own_unit_and_plausible_range():
    """One pool, one index and each definition's parsed declarations are shared; what a feature declares is not."""
    data = [quantity_obs("g1", "2345-7", 110, "mg/dL", date="2026-06-01"),
            quantity_obs("g2", "2345-7", 4.0, "mmol/L", date="2026-05-01")]
    defs = [named("mg", "latest_quantity", "mg/dL", codes=[GLUCOSE], analyte="glucose", plausible=[20, 1500]),
            named("mmol", "latest_quantity", "mmol/L", codes=[GLUCOSE], analyte="glucose", plausible=[1, 5]),
            named("low", "min", "mg/dL", codes=[GLUCOSE], analyte="glucose", plausible=[20, 1500])]
    ctx = ExtractionContext(as_of=AS_OF, all_resources=tuple(data))
    for _ in range(2):  # the second extraction reads the definitions' kept declarations
        fv = extract(defs, {"data": data}, ctx)
        assert fv["mg"].value == 110 and fv["mg"].evidence[0].reference == "Observation/g1"
        # 110 mg/dL is 6.1 mmol/L, outside this feature's range: the older 4.0 mmol/L is its latest plausible value
        assert fv["mmol"].value == 4.0 and fv["mmol"].evidence[0].reference == "Observation/g2"
        assert "Observation/g1" in fv["mmol"].note and "plausible range 1–5" in fv["mmol"].note
        assert fv["low"].value == pytest.approx(4.0 * 18.016) and fv["low"].evidence[0].reference == "Observation/g2"
        assert fv["mg"].note is None and fv["low"].note == "of 2 values"


def test_a_definition_changed_with_replace_reads_its_new_declarations():
    """What a FeatureDef keeps (parsed codes, window) belongs to that definition: `replace` starts afresh."""
    d = named("f", "min", "%", codes=[HBA1C], lookback_days=500)
    assert run_named(d, SERIES).value == 7.5  # a2 and a3 in the window
    wider = replace(d, params=MappingProxyType({"codes": [HBA1C], "lookback_days": 1000}))
    assert run_named(wider, SERIES).value == 7.0  # a1 too
    other = replace(d, params=MappingProxyType({"codes": [GLUCOSE], "lookback_days": 500}))
    assert run_named(other, SERIES).note == "no result recorded"
    assert run_named(d, SERIES).value == 7.5  # the original keeps its own


def run_named(d, resources):
    return extract([d], {"data": resources}, ExtractionContext(as_of=AS_OF, all_resources=tuple(resources)))[d.name]
