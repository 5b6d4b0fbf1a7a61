"""Encounter feature kinds the post-MI model needs (fhir_adapters/kinds_encounter.py): length of stay,
first vitals of the stay, and whether a diagnosis belongs to this stay. Pure functions, no I/O."""
from datetime import datetime, timezone
from types import MappingProxyType

from cds_testing.fhir_factory import ICD10, SNOMED, bp_panel, condition, quantity_obs
from fhir_adapters.features import EXTRACTORS, ExtractionContext, FeatureDef

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=timezone.utc)
MI = ("http://snomed.info/sct|22298006", "http://hl7.org/fhir/sid/icd-10-cm|I21.*")


def encounter(start="2026-06-05T08:00:00Z", end=None, **extra):
    period = {"start": start, **({"end": end} if end else {})}
    return {"resourceType": "Encounter", "id": "e1", "status": "in-progress", "period": period, **extra}


def run(kind, resources, *, encounter_id="e1", **params):
    d = FeatureDef(name="f", kind=kind, label="F", unit=params.pop("unit", None), params=MappingProxyType(params))
    ctx = ExtractionContext(as_of=NOW, hook_context={"encounterId": encounter_id} if encounter_id else {},
                            all_resources=tuple(resources))
    return EXTRACTORS[kind](d, resources, ctx)


def test_length_of_stay_open_stay_counts_to_the_hook_time():
    f = run("encounter_length_of_stay", [encounter()], unit="d")
    assert f.value == 5 and "still open" in f.note and f.evidence[0].reference == "Encounter/e1"


def test_length_of_stay_closed_stay_uses_period_end():
    f = run("encounter_length_of_stay", [encounter(end="2026-06-08T10:00:00Z")], unit="d")
    assert f.value == 3 and f.note is None


def test_length_of_stay_missing_without_the_hook_encounter_or_start():
    assert run("encounter_length_of_stay", [encounter()], encounter_id=None).missing
    assert run("encounter_length_of_stay", [encounter()], encounter_id="other").missing
    assert "no period.start" in run("encounter_length_of_stay", [{"resourceType": "Encounter", "id": "e1"}]).note


def test_first_quantity_is_the_first_value_of_the_stay():
    res = [encounter(),
           quantity_obs("before", "8867-4", 55, "/min", date="2026-05-01T08:00:00Z"),
           quantity_obs("ed", "8867-4", 120, "/min", date="2026-06-05T05:00:00Z"),   # 3 h before admission
           quantity_obs("first", "8867-4", 104, "/min", date="2026-06-05T08:30:00Z"),
           quantity_obs("later", "8867-4", 70, "/min", date="2026-06-07T08:00:00Z")]
    f = run("encounter_first_quantity", res, codes=("http://loinc.org|8867-4",), unit="/min")
    assert f.value == 104 and f.evidence[0].reference == "Observation/first"
    f = run("encounter_first_quantity", res, codes=("http://loinc.org|8867-4",), unit="/min", hours_before_start=6)
    assert f.value == 120  # emergency-department value within the declared window


def test_first_quantity_reads_bp_components_and_observations_naming_the_encounter():
    linked = dict(bp_panel("linked", 150, 95, date="2026-06-04T23:00:00Z"), encounter={"reference": "Encounter/e1"})
    res = [encounter(), linked, bp_panel("bp", 120, 70, date="2026-06-06T09:00:00Z")]
    f = run("encounter_first_quantity", res, codes=("http://loinc.org|8480-6",), unit="mm[Hg]")
    assert f.value == 150  # recorded against this encounter, so it belongs to the stay


def test_first_quantity_missing_when_the_stay_has_none():
    res = [encounter(), quantity_obs("old", "8867-4", 60, "/min", date="2026-01-01")]
    f = run("encounter_first_quantity", res, codes=("http://loinc.org|8867-4",), unit="/min")
    assert f.missing and "during this stay" in f.note


def test_encounter_condition_by_reason_code():
    enc = encounter(reasonCode=[{"coding": [{"system": SNOMED, "code": "22298006"}]}])
    assert run("encounter_condition", [enc], codes=MI).value == 1


def test_encounter_condition_by_diagnosis_reference():
    dx = condition("dx", ICD10, "I21.09", onset="2020-01-01")  # onset outside the stay, but listed as its diagnosis
    enc = encounter(diagnosis=[{"condition": {"reference": "Condition/dx"}}])
    assert run("encounter_condition", [enc, dx], codes=MI).value == 1


def test_encounter_condition_by_condition_encounter_or_onset_during_the_stay():
    linked = dict(condition("c", ICD10, "I21.4", onset="2019-01-01"), encounter={"reference": "Encounter/e1"})
    assert run("encounter_condition", [encounter(), linked], codes=MI).value == 1
    during = condition("c2", SNOMED, "22298006", status="resolved", onset="2026-06-05T09:00:00Z")
    assert run("encounter_condition", [encounter(), during], codes=MI).value == 1


def test_encounter_condition_ignores_old_refuted_and_other_conditions():
    old = condition("old", ICD10, "I21.9", onset="2015-01-01")
    refuted = dict(condition("r", ICD10, "I21.9", onset="2026-06-05T09:00:00Z"),
                   verificationStatus={"coding": [{"code": "refuted"}]})
    other = condition("p", SNOMED, "233604007", onset="2026-06-05T09:00:00Z")
    f = run("encounter_condition", [encounter(), old, refuted, other], codes=MI)
    assert f.value == 0 and "no matching diagnosis" in f.note
    assert run("encounter_condition", [encounter(), old], encounter_id=None, codes=MI).missing


def test_first_quantity_recorded_but_implausible_is_invalid_not_unrecorded():
    """WHAS500's one diastolic pressure of 6 mm Hg: outside the plausible range, so missing and *invalid* (the card
    says 'invalid value', and `population dataset` lists it under `rejected`), unlike a stay with no value."""
    res = [encounter(), quantity_obs("dbp", "8462-4", 6, "mm[Hg]", date="2026-06-05T08:30:00Z")]
    f = run("encounter_first_quantity", res, codes=("http://loinc.org|8462-4",), unit="mm[Hg]", plausible=[10, 200])
    assert f.missing and f.invalid and "plausible range" in f.note
    f = run("encounter_first_quantity", res[:1], codes=("http://loinc.org|8462-4",), unit="mm[Hg]", plausible=[10, 200])
    assert f.missing and not f.invalid
