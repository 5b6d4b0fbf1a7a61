"""Applicability before arithmetic: every service declares who it is for (`[[population]]`) and says so
when it does not apply, never a score. And unavailable is not absent: a missing input is
worded "not recorded" only when the data was read and held nothing.

Sources: the guideline's or model's own population — RCP NEWS2 2017 (scope: adults 16 and over, not in
pregnancy), the WHAS500 training data of post-mi-mortality (aged 30-104, an acute MI this stay), KDIGO 2024
(dialysis and kidney replacement therapy); and the wording rule: "not recorded" only when the data was
available and holds nothing. Service-level scenarios go through the HTTP API; the declaration checks load
service files as the app does at start-up.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from cds_service.applicability import APPLIES, NOT_APPLICABLE, UNDECIDED, assess
from cds_testing.apps import build_app, service_file
from cds_testing.bedside import ICD10, SNOMED, condition, discharge_body, news_body, patient, vital_set
from cds_testing.order_helpers import EXT, post
from fhir_adapters.features import ExtractionContext, FeatureDef
from fhir_adapters.kinds_population import condition_or_procedure
from fhir_adapters.resources import NO_ACCESS, Unavailable
from hooks import ServiceFileError
from hooks.definitions import Criterion
from models.feature_vector import Feature, FeatureVector

NEWS = service_file("deterioration-scores")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    return build_app(tmp_path_factory.mktemp("cds"), services=["post-mi-mortality", "deterioration-scores"]).test_client()


# ---- a service adopts the framework with a few lines of its service file --------------------------------

POST_MI = service_file("post-mi-mortality")
# Three lines and two overrides: the service answers with a card, the age criterion says why and what instead;
# the other two criteria stay silent.
ADOPTED = POST_MI.replace('on_missing = "card"', 'on_missing = "card"\non_not_applicable = "card"', 1).replace(
    'label = "aged 30-104 (the ages in the training data)"\n',
    'label = "aged 30-104 (the ages in the training data)"\n'
    'not_applicable = "1-year mortality after MI not estimated: patient aged {value} (the model was trained on 30-104)"\n'
    'instead = "Below 30 the WHAS500 data hold no patient: use clinical judgement and the GRACE score."\n', 1).replace(
    'label = "discharged after an acute myocardial infarction"\n',
    'label = "discharged after an acute myocardial infarction"\non_not_applicable = "silent"\n', 1).replace(
    'label = "length of stay up to 47 days (the training data\'s range)"\n',
    'label = "length of stay up to 47 days (the training data\'s range)"\non_not_applicable = "silent"\n', 1)


def test_the_same_patient_outside_the_population_gets_no_card_by_default_and_a_card_when_declared(make_app):
    """post-mi-mortality's population is the training data's (WHAS500: aged 30-104). By default it stays
    silent outside it (`on_not_applicable` unset: no card); the same file with a few lines added answers with a
    card naming why — never a risk extrapolated to a 25-year-old."""
    young = discharge_body(age=25)
    assert post(make_app(services=["post-mi-mortality"]).test_client(), "post-mi-mortality", young) == []
    assert ADOPTED.count("on_not_applicable") == 3
    (card,) = post(make_app(services={"post-mi-mortality": ADOPTED}).test_client(), "post-mi-mortality", young)
    assert card["indicator"] == "info"
    assert card["summary"].startswith("1-year mortality after MI not estimated: patient aged 25 years")
    assert "GRACE" in card["detail"] and "score" not in card["extension"][EXT]
    assert card["extension"][EXT]["applicability"]["outside"][0]["criterion"] == "aged 30-104 (the ages in the training data)"


def test_inside_the_population_the_card_carries_the_applicability_result(client):
    """The result of the population check goes into the card's `org.cdsml.prediction` extension (the
    post-MI model's population: an acute MI this stay, aged 30-104, a stay of up to 47 days)."""
    (card,) = post(client, "post-mi-mortality", discharge_body(age=70))
    assert card["extension"][EXT]["applicability"] == {"status": "applies"}
    assert "score" in card["extension"][EXT]


# ---- declarations are checked at start-up, naming the file and the field -------------------------------

@pytest.mark.parametrize("old, new, field, message", [
    ('label = "adults aged 16 and over"\nnot_applicable = ', 'label = "adults aged 16 and over"\nnot_applicable_text = ',
     "population[0].not_applicable_text", "unknown key 'not_applicable_text' (did you mean 'not_applicable'?)"),
    ('if_unknown = "stop"', 'if_unknown = "guess"', "population[0].if_unknown", "must be 'stop'"),
    ('min = 16\n', 'min = "16"\n', "population[0]", "as numbers"),
    ('not_applicable = "NEWS2 does not apply: patient aged {value}', 'not_applicable = "NEWS2 does not apply: patient aged {age}',
     "population[0].not_applicable", "unknown placeholder"),
    ('(validated for 16 and over) — use a paediatric early warning score"',
     '(validated for 16 and over) — use a paediatric early warning score' + " x" * 40 + '"', "population[0].not_applicable", "under 140"),
    ('on_not_applicable = "silent"   # an outpatient', 'on_not_applicable = "quiet"   # an outpatient',
     "population[2].on_not_applicable", "must be 'card' or 'silent'"),
    ('on_not_applicable = "card"   # a child', 'on_not_applicable = "loud"   # a child', "cards.on_not_applicable", "must be 'card'"),
    ('source = "vitals"\ncodes = [\n  "http://loinc.org|9279-1",    # respiratory rate',
     'source = "labs"\ncodes = [\n  "http://loinc.org|9279-1",    # respiratory rate', "observation_sets.vital_set.source", "not a prefetch key"),
    ('tolerance_minutes = 15\n', 'tolerance_minutes = 0\n', "observation_sets.vital_set.tolerance_minutes", "positive number"),
    ('set = "vital_set"', 'set = "vitals_set"', "features.set_time.set", "not declared under [observation_sets]"),
    ('kind = "encounter_class"', 'kind = "encounter_type"', "features.acute_setting.kind", "unknown feature kind"),
])
def test_a_wrong_population_declaration_stops_start_up(make_app, old, new, field, message):
    """A service whose population cannot be judged must not start (the README's service-file table)."""
    assert old in NEWS, old
    with pytest.raises(ServiceFileError) as err:
        make_app(services={"deterioration-scores": NEWS.replace(old, new, 1)})
    assert err.value.field == field and message in str(err.value) and "deterioration-scores.toml" in str(err.value)


def test_a_card_answer_needs_its_summary(make_app):
    """`on_not_applicable = "card"` with a criterion that has no `not_applicable` summary is refused."""
    text = POST_MI.replace('on_missing = "card"', 'on_missing = "card"\non_not_applicable = "card"', 1)
    with pytest.raises(ServiceFileError) as err:
        make_app(services={"post-mi-mortality": text})
    assert err.value.field == "population[0].not_applicable"


# ---- the judgement: applies, does not apply because …, cannot be decided -------------------------------

def _service(make_app):
    return make_app(services=["deterioration-scores"]).extensions["cds"].services["deterioration-scores"][0].definition


def _vector(**values) -> FeatureVector:
    return FeatureVector(tuple(Feature(n, n, v) for n, v in values.items()), datetime(2026, 3, 1, tzinfo=timezone.utc))


@pytest.mark.parametrize("values, unavailable, status", [
    (dict(age=70, pregnant=0, acute_setting=1, encounter_open=1), {}, APPLIES),
    (dict(age=15, pregnant=0, acute_setting=1, encounter_open=1), {}, NOT_APPLICABLE),
    (dict(age=None, pregnant=0, acute_setting=1, encounter_open=1), {}, UNDECIDED),       # age: if_unknown = stop
    (dict(age=70, female=1, pregnant=0, acute_setting=1, encounter_open=1), {"conditions": "x"}, APPLIES),  # pregnancy: note
    (dict(age=70, female=1, pregnant=1, acute_setting=1, encounter_open=1), {"conditions": "x"}, NOT_APPLICABLE),  # found anyway
    (dict(age=70, female=0, pregnant=0, acute_setting=1, encounter_open=1), {"conditions": "x"}, APPLIES),  # a man: only_if
    (dict(age=15, pregnant=0, acute_setting=None, encounter_open=None), {"encounter": "x"}, NOT_APPLICABLE),
])
def test_assess(make_app, values, unavailable, status):
    """RCP NEWS2 2017 scope as declared: ≥ 16 (stop when unknown), not pregnant (note when it cannot be
    checked), an inpatient or emergency encounter in progress (note). A value found outside decides even when
    other data could not be read; a value inside that rests on unread data is "not checked"."""
    service = _service(make_app)
    names = [f.name for f in service.features]
    vector = _vector(**{n: values.get(n, 0) for n in names})
    result = assess(service, vector, unavailable)
    assert result.status == status
    if unavailable.get("conditions") and status == APPLIES:
        # pregnancy `only_if = "female"`: not checked for a woman, nothing to check for a man
        assert [u.criterion.label for u in result.unchecked] == (["not pregnant"] if values["female"] else [])


def test_criterion_holds_on_its_bounds():
    """Both sides of a declared bound (age ≥ 16; equals 0)."""
    assert Criterion("age", min=16).holds(16) and not Criterion("age", min=16).holds(15.99)
    assert Criterion("pregnant", equals=0).holds(0) and not Criterion("pregnant", equals=0).holds(1)
    assert not Criterion("age", min=16).holds(None)


# ---- unavailable is not absent: the wording of a missing input --------------------------------------------

def test_pregnancy_not_checked_when_the_problem_list_could_not_be_read(client):
    """RCP NEWS2 2017 (scope: not in pregnancy). The problem list was not available to the service: NEWS2 is
    scored, and the card says pregnancy could not be checked — not that there is none."""
    (card,) = post(client, "deterioration-scores", news_body(vital_set(), omit=("conditions",)))
    assert "Not checked:** not pregnant" in card["detail"]
    assert "not available to the service (no prefetch and no FHIR access)" in card["detail"]
    assert card["extension"][EXT]["applicability"]["notChecked"][0]["unavailable"] == ["conditions"]


def test_birth_date_not_recorded_is_not_called_unavailable(client):
    """A Patient that was read but holds no birth date: the age is "not recorded" (the data was available),
    and NEWS2 (adults ≥ 16, RCP 2017) is not scored."""
    no_birth = patient(age=None)
    (card,) = post(client, "deterioration-scores", news_body(vital_set(), patient_=no_birth))
    assert card["summary"] == "NEWS2 not scored: the patient's age is not recorded"
    assert "birth date not recorded" in card["detail"]


@pytest.mark.parametrize("body, wording", [
    (discharge_body(with_vitals=False), "not recorded"),
    (discharge_body(omit=("vitals",)), "not available to the service (no prefetch and no FHIR access)"),
])
def test_a_missing_input_is_worded_by_why_it_is_missing(client, body, wording):
    """The post-MI model needs the stay's initial heart rate (WHAS500 `hr`): absent from vital signs that were
    read → "not recorded"; vital signs that could not be obtained → "not available to the service", never
    "not recorded" (the risk card's missing-input wording)."""
    (card,) = post(client, "post-mi-mortality", body)
    assert "not calculated" in card["summary"]
    line = next(l for l in card["detail"].splitlines() if l.startswith("- Initial heart rate"))
    assert wording in line
    assert ("not recorded" in line) is (wording == "not recorded")


# ---- kidney replacement therapy and other conditions-or-procedures (for the order-time services) ---------

KRT = FeatureDef("krt", "condition_or_procedure", ("conditions",), "Kidney replacement therapy", params={
    # ICD-10-CM Z99.2 dependence on renal dialysis, N18.6 end-stage renal disease, Z94.0 kidney transplant status;
    # SNOMED CT 108241001 dialysis procedure.
    "codes": ("http://hl7.org/fhir/sid/icd-10-cm|Z99.2", "http://hl7.org/fhir/sid/icd-10-cm|N18.6",
              "http://hl7.org/fhir/sid/icd-10-cm|Z94.0"),
    "procedure_codes": ("http://snomed.info/sct|108241001",), "lookback_days": 30})
NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)


def _procedure(performed: str, status: str = "completed") -> dict:
    return {"resourceType": "Procedure", "id": "dx", "status": status, "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": SNOMED, "code": "108241001", "display": "Dialysis procedure"}]},
            "performedDateTime": performed}


@pytest.mark.parametrize("resources, value", [
    ([condition("c", ICD10, "Z99.2")], 1.0), ([condition("c", ICD10, "N18.6")], 1.0), ([condition("c", ICD10, "Z94.0")], 1.0),
    ([condition("c", ICD10, "N18.5")], 0.0), ([condition("c", ICD10, "Z99.2", status="resolved")], 0.0),
    ([_procedure("2026-02-20")], 1.0), ([_procedure("2026-01-01")], 0.0), ([_procedure("2026-02-20", status="not-done")], 0.0),
    ([], 0.0),
])
def test_kidney_replacement_therapy_edges(resources, value):
    """KDIGO 2024 (dialysis/KRT changes drug rules; eGFR is not meaningful): Z99.2, N18.6, Z94.0 as active
    Conditions, or a dialysis procedure inside the lookback; N18.5, a resolved Z99.2, a procedure outside the
    lookback or not done do not count."""
    f = condition_or_procedure(KRT, resources, ExtractionContext(NOW))
    assert f.value == value
    if value:
        assert f.note


def test_unavailable_reason_words(client):
    """The three states a card tells apart (not recorded / not available / could not be retrieved)."""
    from cds_service.builders.base import unavailable_text
    from fhir_adapters.resources import TIMEOUT

    assert unavailable_text(Unavailable("not prefetched, and no FHIR server access was given", NO_ACCESS)) == \
        "not available to the service (no prefetch and no FHIR access)"
    assert unavailable_text(Unavailable("Observation search: the FHIR server did not answer in time", TIMEOUT)) == \
        "could not be retrieved (timeout)"
    assert unavailable_text(Unavailable("OperationOutcome: exception")) == "could not be retrieved (OperationOutcome: exception)"


@pytest.mark.parametrize("age,scored", [(29, False), (30, True), (104, True), (105, False)])
def test_post_mi_mortality_ages_of_the_training_data(client, age, scored):
    """WHAS500 (Hosmer, Lemeshow and May 2008): patients aged 30-104; outside, no risk is extrapolated (no card)."""
    assert bool(post(client, "post-mi-mortality", discharge_body(age=age))) == scored


@pytest.mark.parametrize("days,scored", [(47, True), (48, False)])
def test_post_mi_mortality_lengths_of_stay_of_the_training_data(client, days, scored):
    """WHAS500: stays up to 47 days; a longer stay gets no card rather than a risk extrapolated along the length of
    stay, the model's steepest input."""
    body = discharge_body()
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=days, hours=1)
    body["prefetch"]["encounter"]["period"] = {"start": start.isoformat()}
    for o in body["prefetch"]["vitals"]["entry"]:
        o["resource"]["effectiveDateTime"] = (start + timedelta(minutes=15)).isoformat()
    assert bool(post(client, "post-mi-mortality", body)) == scored
