"""Services as data: every file under hooks/ loads; a wrong file stops start-up naming file and field."""
import re

import pytest

from cds_service.config import ConfigError
from cds_testing.apps import service_file, services_dir
from hooks import SERVICES_DIR, ServiceFileError

ASCVD = service_file("ascvd-10y-risk")
PCE = 'ref = "equation:pce-goff-2013"'


def test_every_bundled_service_file_loads(app):
    loaded = app.extensions["cds"].all_services()
    files = {p.name.split(".")[0] for p in SERVICES_DIR.glob("*.toml")}
    assert {b.definition.id for b in loaded} == files


@pytest.mark.parametrize("old,new,field,message", [
    ('kind = "latest_quantity"', 'kind = "newest_value"', "features.total_cholesterol.kind", "unknown feature kind"),
    ('ref = "equation:pce-goff-2013"', 'ref = "equation:no-such-model"', "model.ref", "cannot load"),
    ('ref = "equation:pce-goff-2013"', 'ref = "artifact:missing-model/9.9.9"', "model.ref", "cannot load"),
    ('name = "hdl"\n', 'name = "hdl_c"\n', "features", "needs features not declared here: hdl"),
    ('summary = "Low 10-year ASCVD risk {risk} (PCE)."',
     'summary = "Low 10-year ASCVD risk {risk} (PCE). ' + "x" * 110 + '"', "cards.rules[3].summary", "under 140"),
    ('summary = "Low 10-year ASCVD risk {risk} (PCE)."',
     'summary = "Low risk {score}"', "cards.rules[3].summary", "unknown placeholder"),
    ('indicator = "info"', 'indicator = "success"', "cards.rules[2].indicator", "CARD-3"),
    ('hook = "patient-view"', 'hook = "chart-open"', "hook", "unknown hook"),
    ('"Patient/{{context.patientId}}"', '"Patient/{{context.draftOrders.id}}"', "prefetch.patient.query", "not allowed"),
    ('"Patient/{{context.patientId}}"', '"Patient/{{patientId}}"', "prefetch.patient.query", "not allowed"),  # TOKEN-1
    ('source = "lipids"\nlabel = "HDL', 'source = "labs"\nlabel = "HDL', "features.hdl.source", "not a prefetch key"),
    ('lookback_days = 730', 'lookback_days = 730\nwindow = 3', "features.sbp.window", "unknown key 'window' (known here: "),
    ('on_error = "fail"', 'on_error = "fail"', None, None),
    ('source_label = "2018 AHA/ACC/multisociety Guideline on the Management of Blood Cholesterol (Grundy 2019)"', 'source_label = ""', "cards.source_label", "SRC-1"),
    ('code = "patient-refuses", display = "Patient refuses/declines (no context given)"', 'code = "patient-refuses"', "cards.override_reasons[0]", "OVR-1"),
    ('id = "ascvd-10y-risk"', 'id = "ascvd-risk"', "id", "must match the file name"),
    ('min_score = 0.05', 'min_score = 0.5', "cards.rules", "ordered"),
    ('unless = "on_statin"', 'unless = "on_statins"', "suggestions.statin_moderate.unless", "not a declared feature"),
    # [model] secondary: loaded through the registry at start-up, like model.ref
    (PCE, PCE + '\nsecondary = ["equation:no-such-model"]', "model.secondary[0]", "cannot load 'equation:no-such-model'"),
    (PCE, PCE + '\nsecondary = "equation:qsofa"', "model.secondary", "must be a list"),
    (PCE, PCE + '\nsecondary = ["equation:qsofa"]', "features", "'equation:qsofa' needs features not declared here: resp_rate"),
    (PCE, PCE + '\nsecondary = ["equation:pce-goff-2013", "equation:pce-goff-2013"]', "model.secondary", "more than once"),
    (PCE, PCE + '\nsecondary = ["equation:pce-goff-2013"]', "model.secondary", "builder 'ascvd' needs [model] secondary = []"),
    (PCE, PCE + '\nrefs = ["equation:qsofa"]', "model.refs", "unknown key 'refs' (did you mean 'ref'?)"),
    # ranges and unknown keys (file, line and a "did you mean")
    ('min_score = 0.20', 'min_score = 20', "cards.rules[0].min_score", "must be a risk from 0 to 1 (a fraction: 0.2 is 20 %), not 20; 20 % is written 0.2"),
    ('min_score = 0.20', 'min_score = "high"', "cards.rules[0].min_score", "not 'high'"),
    ('min_score = 0.05', 'min_scor = 0.05', "cards.rules[2].min_scor", "unknown key 'min_scor' (did you mean 'min_score'?)"),
    ('[suggestions.statin_moderate]', '[sugestions.statin_moderate]', "sugestions", "did you mean 'suggestions'?"),
    ('top_factors = 3', 'top_factor = 3', "cards.top_factor", "did you mean 'top_factors'?"),
    ('top_factors = 3', 'top_factors = 3.5', "cards.top_factors", "whole number from 0 to 20"),
    ('on_error = "fail"', 'on_eror = "fail"', "prefetch.patient.on_eror", "did you mean 'on_error'?"),
    ('lookback_days = 730', 'lookback_days = -730', "features.sbp.lookback_days", "positive number of days, not -730"),
    ('plausible = [60, 300]', 'plausible = [300, 60]', "features.sbp.plausible", "low below high"),
    # one-click orders: a medication is an orderable clinical drug with a structured dose; a test
    # has a clinician name next to its code
    ('rxnorm|617311"', 'rxnorm|83367"', "suggestions.statin_high.code", "RxNorm clinical drug (SCD)"),
    ('display = "atorvastatin 40 MG Oral Tablet"', 'display = "atorvastatin 40 mg"', "suggestions.statin_high.display",
     "'atorvastatin 40 MG Oral Tablet'"),
    ('dose = { value = 40, unit = "mg", times_per_day = 1, route = "oral" }\n', '', "suggestions.statin_high", "needs a structured dose"),
    ('dose = { value = 40,', 'dose = { value = 30,', "suggestions.statin_high.dose", "whole number of 40 mg units"),
    ('times_per_day = 1, route = "oral" }\ntext = "atorvastatin 40', 'times_per_day = 1, route = "iv" }\ntext = "atorvastatin 40',
     "suggestions.statin_high.dose.route", "must be one of oral"),
    ('times_per_day = 1, route = "oral" }\ntext = "atorvastatin 40', 'times_per_day = 1, rout = "oral" }\ntext = "atorvastatin 40',
     "suggestions.statin_high.dose.rout", "did you mean 'route'?"),
    ('display = "Tobacco smoking status", name = "smoking status" }', 'display = "Tobacco smoking status" }',
     "features.smoker.order", "name is required"),
])
def test_bad_service_file_refuses_to_start(make_app, old, new, field, message):
    assert old in ASCVD, old
    text = ASCVD.replace(old, new, 1)
    if field is None:  # the control row: a no-op edit leaves a valid file, and the app starts with it
        assert make_app(services={"ascvd-10y-risk": text}).extensions["cds"].services["ascvd-10y-risk"]
        return
    with pytest.raises(ServiceFileError) as err:
        make_app(services={"ascvd-10y-risk": text})
    assert err.value.field == field
    assert "ascvd-10y-risk.toml" in str(err.value)
    if message:
        assert message in str(err.value)
    # The error names the line of its field (or of the table holding it): `<file>:<line>: <field>: …`
    line = err.value.line
    assert line and str(err.value).startswith(f"ascvd-10y-risk.toml:{line}: {field}: ")
    named = re.findall(r"[a-z_]+", field)[-1]
    if not field.endswith("]"):
        assert named in text.splitlines()[line - 1], (field, text.splitlines()[line - 1])


def test_unknown_key_is_reported_before_what_its_absence_breaks(make_app):
    """A typo in `min_score` would leave the rule at 0 and break the ordering of the rules; it is reported as
    the typo it is, with the file, its line and the key it was meant to be."""
    text = ASCVD.replace("min_score = 0.05", "min_scor = 0.05", 1)
    line = text.splitlines().index("min_scor = 0.05") + 1
    with pytest.raises(ServiceFileError) as err:
        make_app(services={"ascvd-10y-risk": text})
    assert str(err.value) == f"ascvd-10y-risk.toml:{line}: cards.rules[2].min_scor: unknown key 'min_scor' (did you mean 'min_score'?)"
    assert "ordered" not in str(err.value)


def test_error_in_builder_data_names_its_line(make_app):
    """A builder's own check (here CARD-2 on a summary in [data]) gets the line of the field it names."""
    renal = service_file("renal-dosing")
    old = 'summary = "Edoxaban at CrCl {value} mL/min (below 15): not recommended"'
    text = renal.replace(old, old[:-1] + " " + "x" * 120 + '"', 1)
    line = next(i for i, s in enumerate(text.splitlines(), 1) if "x" * 120 in s)
    with pytest.raises(ServiceFileError, match="CARD-2") as err:
        make_app(services={"renal-dosing": text})
    assert err.value.line == line and str(err.value).startswith(f"renal-dosing.toml:{line}: data.drugs.edoxaban.")


def test_population_bounds_are_checked(make_app):
    text = service_file("post-mi-mortality").replace("min = 30\nmax = 104", "min = 104\nmax = 30", 1)
    with pytest.raises(ServiceFileError, match=r"population\[1\]: min 104 is above max 30"):
        make_app(services={"post-mi-mortality": text})


def test_unused_feature_is_refused(make_app):
    text = ASCVD + '\n[[features]]\nname = "ldl"\nkind = "latest_quantity"\nsource = "lipids"\nunit = "mg/dL"\ncodes = ["http://loinc.org|13457-7"]\n'
    with pytest.raises(ServiceFileError, match="never used: ldl"):
        make_app(services={"ascvd-10y-risk": text})


def test_invalid_toml_is_refused(make_app):
    with pytest.raises(ServiceFileError, match="not valid TOML"):
        make_app(services={"ascvd-10y-risk": ASCVD + "\n[[[broken"})


def test_duplicate_id_and_hook_is_refused(make_app):
    with pytest.raises(ServiceFileError, match="already declared"):
        make_app(services={"ascvd-10y-risk": ASCVD, "ascvd-10y-risk.copy": ASCVD})


def test_cli_validate_reports_the_file_and_field(tmp_path, capsys, monkeypatch):
    from cds_service.cli.main import main

    hooks_dir = services_dir(tmp_path, {"ascvd-10y-risk": ASCVD.replace('kind = "age"', 'kind = "agee"')})
    monkeypatch.setenv("CDS_HOOKS_DIR", hooks_dir)
    monkeypatch.setenv("CDS_AUTH_REQUIRED", "false")
    monkeypatch.setenv("CDS_DATABASE_URL", f"sqlite:///{tmp_path}/db.sqlite3")
    assert main(["validate"]) == 1
    err = capsys.readouterr().err
    assert re.search(r"ascvd-10y-risk\.toml:\d+: features\.age\.kind: unknown feature kind 'agee'", err)


def test_unknown_setting_is_refused(make_app):
    with pytest.raises(ConfigError, match="unknown setting"):
        make_app(hooks_directory="x")


def test_secondary_models_are_loaded_by_the_registry_and_run_and_timed_by_the_pipeline(app, monkeypatch):
    """`[model] secondary` (qSOFA beside NEWS2): loaded at start-up into the bound service, predicted by
    `pipeline.invoke` inside the timed model stage, and handed to the builder (never loaded by it)."""
    from datetime import datetime, timezone

    from cds_service import pipeline
    from cds_service.hook_request import parse_hook_request
    from hooks.catalog import HOOKS

    bound = app.extensions["cds"].services["deterioration-scores"][0]
    assert bound.definition.secondary_refs == ("equation:qsofa",)
    qsofa = bound.secondary["equation:qsofa"]
    assert qsofa.info.id == "qsofa"

    clock = [0.0]
    monkeypatch.setattr(pipeline.time, "perf_counter", lambda: clock[0])

    class Spy:  # the real qSOFA, taking 5 "seconds" of the fake clock
        info = qsofa.info
        calls = 0

        def predict(self, features):
            Spy.calls += 1
            clock[0] += 5.0
            return qsofa.predict(features)

    spied = pipeline.BoundService(bound.definition, bound.model, bound.builder, {"equation:qsofa": Spy()})
    prefetch = {key: None for key in bound.definition.prefetch}  # null: known to be empty
    # NEWS2 applies to an adult in an inpatient encounter in progress (applicability before arithmetic).
    prefetch["patient"] = {"resourceType": "Patient", "id": "p1", "birthDate": "1960-01-01"}
    prefetch["encounter"] = {"resourceType": "Encounter", "id": "e1", "status": "in-progress",
                             "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"}}
    body = {"hook": "encounter-start", "hookInstance": "d1b6c1a2-0000-4000-8000-000000000001",
            "context": {"userId": "Practitioner/1", "patientId": "p1", "encounterId": "e1"}, "prefetch": prefetch}
    timings = pipeline.Timings()
    response, ctx = pipeline.invoke(spied, parse_hook_request(body, HOOKS["encounter-start"]),
                                    now=datetime(2026, 3, 1, tzinfo=timezone.utc), timings=timings)
    assert Spy.calls == 1
    assert timings.model == 5.0 and timings.cards == 0.0
    assert ctx.secondary["equation:qsofa"].model == "qsofa"
    [card] = response.to_json()["cards"]
    shown = card["extension"]["org.cdsml.prediction"]["predictions"]
    assert [p["model"] for p in shown] == ["news2", "qsofa"]  # the primary, then the secondary from the pipeline


def test_outside_the_population_secondary_models_are_named_but_not_run(app):
    """No age (renal-dosing is for adults): neither CKD-EPI nor Cockcroft-Gault runs; the builder still
    finds the secondary by its ref (None: not calculated) and says renal function is unknown."""
    from datetime import datetime, timezone

    from cds_service import pipeline
    from cds_service.hook_request import parse_hook_request
    from hooks.catalog import HOOKS

    (bound,) = app.extensions["cds"].services["renal-dosing"]
    order = {"resourceType": "MedicationRequest", "id": "m1", "status": "draft", "intent": "order", "subject": {"reference": "Patient/p1"},
             "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "6809"}],
                                           "text": "metformin 500 MG Oral Tablet"}}
    body = {"hook": "order-sign", "hookInstance": "d1b6c1a2-0000-4000-8000-000000000002",
            "context": {"userId": "Practitioner/1", "patientId": "p1",
                        "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]}},
            "prefetch": {key: None for key in bound.definition.prefetch}}
    response, ctx = pipeline.invoke(bound, parse_hook_request(body, HOOKS["order-sign"]), now=datetime(2026, 3, 1, tzinfo=timezone.utc))
    assert ctx.prediction is None and dict(ctx.secondary) == {"equation:cockcroft-gault-1976": None}
    [card] = response.to_json()["cards"]
    assert card["summary"].startswith("Renal function unknown") and "predictions" not in card["extension"]["org.cdsml.prediction"]


DIABETES = service_file("diabetes-detection")
RISK_TEST = 'secondary = ["equation:ada-risk-test"]'


@pytest.mark.parametrize("old,new,field,message", [
    # a rule-based service may declare secondary models alone; its builder says which (and that there is no ref)
    (RISK_TEST, 'ref = "equation:ada-risk-test"\n' + RISK_TEST, "model.ref", "builder 'diabetes_detection' needs no [model] ref"),
    (RISK_TEST, "secondary = []", "model.secondary", 'needs [model] secondary = ["equation:ada-risk-test"]'),
    ('name = "physically_inactive"', 'name = "inactive"', "features", "needs features not declared here: physically_inactive"),
    ('kind = "not_read"', 'kind = "not_read"\ncodes = ["http://loinc.org|89574-8"]', "features.physically_inactive.codes", "unknown key 'codes'"),
])
def test_bad_diabetes_detection_file_refuses_to_start(make_app, old, new, field, message):
    assert old in DIABETES, old
    with pytest.raises(ServiceFileError) as err:
        make_app(services={"diabetes-detection": DIABETES.replace(old, new, 1)})
    assert err.value.field == field and message in str(err.value)


def test_secondary_models_run_without_a_primary_model(app):
    """diabetes-detection has no `[model] ref` (guideline thresholds): the pipeline still runs its secondary
    ADA Risk Test and hands it to the builder; the input the service does not read (kind `not_read`) is
    missing, so the score is a lower bound naming it."""
    from datetime import datetime, timezone

    from cds_service import pipeline
    from cds_service.hook_request import parse_hook_request
    from cds_testing.fhir_factory import bundle, patient, quantity_obs
    from hooks.catalog import HOOKS

    bound = app.extensions["cds"].services["diabetes-detection"][0]
    assert bound.model is None and list(bound.secondary) == ["equation:ada-risk-test"]
    prefetch = {"patient": patient("p1", "male", "1970-01-01"), "conditions": bundle(), "labs": bundle(),
                "vitals": bundle(quantity_obs("b", "39156-5", 31, "kg/m2", date="2026-02-01"))}
    body = {"hook": "patient-view", "hookInstance": "d1b6c1a2-0000-4000-8000-000000000003",
            "context": {"userId": "Practitioner/1", "patientId": "p1"}, "prefetch": prefetch}
    _, ctx = pipeline.invoke(bound, parse_hook_request(body, HOOKS["patient-view"]), now=datetime(2026, 3, 1, tzinfo=timezone.utc))
    assert ctx.prediction is None
    score = ctx.secondary["equation:ada-risk-test"]
    assert score.score == 2 + 1 + 2  # aged 56 (50-59), man, BMI 31 (30 to < 40): Bang 2009 point table
    assert "physically_inactive" in score.details["not_assessed"] and score.details["complete"] is False
    inactive = ctx.features["physically_inactive"]
    assert inactive.missing and inactive.note == "not read by this service"
