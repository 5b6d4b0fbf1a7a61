"""Population jobs without Spark: the per-patient function, applicability, outcomes, metrics,
the flat dataset row, and the `/population` worklist page over a scored file."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from cds_service.config import Settings
from cds_service.ehr.patients import DemoPatients
from cds_service.population.jobs import Job, load_bound, parse_index_date, process
from cds_service.population.metrics import calibration, decision_curve, roc_points, validation_metrics, wilson
from cds_service.population.outcomes import Outcome, OutcomeError, as_known_at, label, load_outcome
from cds_service.population.patient import UnsupportedService, check_supported, score_patient
from cds_testing.optional import require_module
from models.evaluation import auroc

NOW = datetime(2026, 1, 1, 23, 59, 59, tzinfo=timezone.utc)
SETTINGS = Settings.from_mapping({})
MI = {"coding": [{"system": "http://snomed.info/sct", "code": "22298006"}]}


@pytest.fixture(scope="module")
def demo():
    return DemoPatients(clock=lambda: NOW)


def _bound(service_id):
    return load_bound(SETTINGS.hooks_dir, SETTINGS.model_dir, service_id)


def test_score_patient_gives_score_band_factors_and_provenance(demo):
    """demo-19: 74-year-old smoker without a statin → warning band, with the factors raising her risk."""
    row = score_patient(_bound("ascvd-10y-risk"), "demo-19", demo.resources("demo-19"), NOW)
    assert row["applicability"] == "applies" and row["error"] is None
    assert 0.2 < row["score"] < 1 and row["indicator"] == "warning" and "statin" in row["summary"]
    assert row["model_id"] == "pce-goff-2013" and row["missing"] == []
    assert row["top_factors"][0]["contribution"] >= row["top_factors"][-1]["contribution"] > 0
    sbp = next(f for f in row["features"] if f["name"] == "sbp")
    assert sbp["unit"] == "mm[Hg]" and sbp["date"] and sbp["sources"][0].startswith("Observation/")
    assert (row["sex"], row["age_band"]) == ("female", "70-79")


def test_score_patient_outside_population_names_the_reason(demo):
    row = score_patient(_bound("ascvd-10y-risk"), "demo-30", demo.resources("demo-30"), NOW)
    assert row["applicability"] == "not-applicable" and row["score"] is None and row["indicator"] is None
    # adults 20-79 is ascvd-10y-risk's population; 40-79 the Pooled Cohort Equations' own range (scope "model")
    assert row["applicability_reasons"] == ["outside 'aged 40-79 (the Pooled Cohort Equations)' (Age = 31)"]


def test_score_patient_missing_inputs_are_listed_not_invented(demo):
    """demo-04 has no smoking status: in the population, no score, an info card naming the input."""
    row = score_patient(_bound("ascvd-10y-risk"), "demo-04", demo.resources("demo-04"), NOW)
    assert row["applicability"] == "applies" and row["score"] is None
    assert row["missing"] == ["smoker"] and row["indicator"] == "info"


def test_unknown_applicability_when_a_population_input_is_missing(demo):
    resources = [r for r in demo.resources("demo-19") if r["resourceType"] != "Patient"]
    resources.append({"resourceType": "Patient", "id": "demo-19", "gender": "female"})  # no birth date
    row = score_patient(_bound("ascvd-10y-risk"), "demo-19", resources, NOW)
    assert row["applicability"] == "undecided" and row["applicability_reasons"][0] == "'adults aged 20-79' not checked (Age: birth date not recorded)"
    assert row["age_band"] == "not recorded" and "age" in row["missing"]


def test_a_later_diagnosis_is_not_known_at_the_index_date(demo):
    """A myocardial infarction dated after the index date is an outcome, not a feature (no look-ahead)."""
    later = {"resourceType": "Condition", "id": "mi", "subject": {"reference": "Patient/demo-19"}, "code": MI,
             "onsetDateTime": (NOW + timedelta(days=30)).isoformat()}
    resources = demo.resources("demo-19") + [later]
    assert score_patient(_bound("ascvd-10y-risk"), "demo-19", resources, NOW)["applicability"] == "applies"
    at_event = score_patient(_bound("ascvd-10y-risk"), "demo-19", resources, NOW + timedelta(days=31))
    assert at_event["applicability"] == "not-applicable"
    patient = {"resourceType": "Patient", "id": "x", "deceasedDateTime": (NOW + timedelta(days=2)).isoformat()}
    assert "deceasedDateTime" not in as_known_at([patient], NOW)[0]


def test_only_patient_view_services_run_on_a_population():
    check_supported(_bound("diabetes-detection"))
    from cds_service.runtime import build_services

    renal = build_services(SETTINGS)["renal-dosing"][0]
    with pytest.raises(UnsupportedService, match="order-s"):
        check_supported(renal)


def test_outcome_label_window_and_follow_up():
    outcome = Outcome("mi", "MI", 365, ("http://snomed.info/sct|22298006",), death=True)
    cond = lambda days: {"resourceType": "Condition", "code": MI, "onsetDateTime": (NOW + timedelta(days=days)).isoformat()}  # noqa: E731
    assert label(outcome, [cond(10)], NOW).event == 1
    assert label(outcome, [cond(365)], NOW).event == 1
    assert label(outcome, [cond(366)], NOW).event == 0
    assert label(outcome, [cond(-1)], NOW).event == 0  # before the index date: history, not outcome
    dead = {"resourceType": "Patient", "deceasedDateTime": (NOW + timedelta(days=100)).isoformat()}
    assert label(outcome, [dead], NOW) .date == (NOW + timedelta(days=100)).date().isoformat()
    strict = Outcome("mi", "MI", 365, ("http://snomed.info/sct|22298006",), require_follow_up=True)
    assert label(strict, [cond(-5)], NOW).event is None
    seen_later = {"resourceType": "Observation", "effectiveDateTime": (NOW + timedelta(days=400)).isoformat()}
    assert label(strict, [cond(-5), seen_later], NOW).event == 0


def test_outcome_file_is_checked(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('window_days = 0\ncodes = ["22298006"]\n')
    with pytest.raises(OutcomeError, match="window_days"):
        load_outcome(bad)
    bad.write_text('window_days = 30\ncodes = ["22298006"]\n')
    with pytest.raises(OutcomeError, match="system\\|code"):
        load_outcome(bad)
    assert load_outcome(SETTINGS_OUTCOME).window_days == 365


SETTINGS_OUTCOME = __import__("pathlib").Path(__file__).resolve().parent.parent / "config" / "outcomes" / "mi-or-death-1y.toml"


def test_index_dates():
    assert parse_index_date("2026-03-04") == datetime(2026, 3, 4, 23, 59, 59, tzinfo=timezone.utc)
    assert parse_index_date("2026-03-04T10:00:00Z") == datetime(2026, 3, 4, 10, tzinfo=timezone.utc)


def test_process_flat_dataset_row_and_bad_lines(demo):
    lines = [json.dumps(r) for r in demo.resources("demo-19")] + ["{not json", ""]
    outcome = Outcome("mi", "MI", 365, ("http://snomed.info/sct|22298006",))
    scored = process(Job("ascvd-10y-risk", SETTINGS.hooks_dir, SETTINGS.model_dir, outcome), "demo-19", lines, NOW)
    assert scored["outcome"] == 0 and "1 line(s) of the export were not JSON objects" in scored["notes"][-1]
    flat = process(Job("ascvd-10y-risk", SETTINGS.hooks_dir, SETTINGS.model_dir, outcome, flat=True), "demo-19", lines, NOW)
    assert flat["sbp"] == next(f["value"] for f in scored["features"] if f["name"] == "sbp") > 0
    assert flat["outcome"] == 0 and "features" not in flat and flat["applicability"] == "applies"


def test_roc_points_agree_with_the_auroc():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 300), 0, 1)
    pts = np.array(roc_points(y, p, max_points=10_000))
    trapezoid = float(np.sum(np.diff(pts[:, 0]) * (pts[1:, 1] + pts[:-1, 1]) / 2))
    assert pts[0].tolist() == [0, 0] and pts[-1].tolist() == [1, 1]
    assert trapezoid == pytest.approx(auroc(y, p), abs=1e-4)


def test_decision_curve_net_benefit_by_hand():
    y = np.array([1, 1, 0, 0, 0])
    p = np.array([0.9, 0.2, 0.6, 0.1, 0.05])
    (row,) = decision_curve(y, p, thresholds=(0.5,))
    # act on 0.9 (TP) and 0.6 (FP): (1 - 1 * 0.5/0.5) / 5 = 0; act for all: 2/5 - 3/5 * 1 = -0.2
    assert row == {"threshold": 0.5, "model": 0.0, "treat_all": -0.2}


def test_calibration_bins_and_wilson_interval():
    lo, hi = wilson(5, 20)
    assert (round(lo, 4), round(hi, 4)) == (0.1119, 0.4687)  # Wilson 95% for 5/20
    y = np.array([0, 0, 0, 1] * 25)
    p = np.full(100, 0.25)
    cal = calibration(y, p, bins=4)
    assert [b["n"] for b in cal["bins"]] == [25] * 4 and cal["observed_expected"] == 1.0
    assert "slope" not in cal  # every prediction equal: no recalibration line
    assert validation_metrics(y, p, {})["overall"]["auroc"] is None


def test_validation_metrics_subgroups_with_small_groups():
    y = np.array([1, 0] * 50)
    p = np.linspace(0.9, 0.1, 100)
    sex = np.array(["female"] * 96 + ["male"] * 4, dtype=object)
    m = validation_metrics(y, p, {"sex": sex})
    groups = {g["group"]: g for g in m["subgroups"]["sex"]}
    assert groups["female"]["auroc_ci"] is not None and groups["male"]["auroc"] is None  # 2 events: counts only
    assert m["overall"]["n"] == 100 and len(m["decision_curve"]) == 60


# ---- /population ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scored_file(tmp_path_factory, demo):
    import pyarrow.parquet as pq

    from cds_service.population.jobs import schema, to_table

    bound = _bound("ascvd-10y-risk")
    rows = [score_patient(bound, pid, demo.resources(pid), NOW) for pid in demo.ids]
    path = tmp_path_factory.mktemp("scored") / "scored.parquet"
    pq.write_table(to_table(rows, schema(Job("ascvd-10y-risk", SETTINGS.hooks_dir, SETTINGS.model_dir))), path)
    return str(path), {r["patient_id"]: r for r in rows}


OPERATOR_TOKEN = "operator-token-for-the-worklist"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def _worklist(make_app, path):
    """A test client of an app serving the worklist of `path`, sending the operator's login."""
    client = make_app(ui_population=path, analytics_token=OPERATOR_TOKEN).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = OPERATOR["Authorization"]
    return client


def test_worklist_is_off_by_default(client, make_app):
    assert client.get("/population").status_code == 404
    assert b"Population worklist" not in client.get("/analytics").data
    # Off by default even for the operator: the analytics login alone does not turn it on.
    assert make_app(analytics_token=OPERATOR_TOKEN).test_client().get("/population", headers=OPERATOR).status_code == 404


def test_worklist_needs_the_operator_login(make_app, scored_file):
    """It lists patients: 401 (with a Basic challenge) without the /analytics operator login, for the page and the
    CSV export; 200 with it, as Bearer or as HTTP Basic; and no worklist without an operator token at all."""
    import base64

    from cds_service.config import ConfigError

    path, _ = scored_file
    client = make_app(ui_population=path, analytics_token=OPERATOR_TOKEN).test_client()
    for url in ("/population", "/population?format=csv"):
        refused = client.get(url)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Basic ")
        assert b"demo-" not in refused.data
        assert client.get(url, headers={"Authorization": "Bearer wrong-token-wrong-token"}).status_code == 401
        assert client.get(url, headers=OPERATOR).status_code == 200
    basic = base64.b64encode(f"operator:{OPERATOR_TOKEN}".encode()).decode()
    ok = client.get("/population", headers={"Authorization": f"Basic {basic}"})
    assert ok.status_code == 200 and ok.headers["Cache-Control"] == "no-store"
    with pytest.raises(ConfigError, match="ui_population needs analytics_token"):
        make_app(ui_population=path)


def test_worklist_ranks_patients_by_risk(make_app, scored_file):
    path, rows = scored_file
    client = _worklist(make_app, path)
    html = client.get("/population").get_data(as_text=True)
    assert "Population worklist" in html
    shown = [line.split("<code>")[1].split("</code>")[0] for line in html.split('<tr class="band-')[1:]]
    applies = sorted((r for r in rows.values() if r["applicability"] == "applies"),
                     key=lambda r: (r["score"] is None, -(r["score"] or 0)))
    assert shown == [r["patient_id"] for r in applies]  # default: in the population, highest risk first
    assert "demo-30" not in shown  # outside the population unless asked for
    top = applies[0]
    assert top["top_factors"][0]["label"] in html


def test_worklist_filters_sorts_and_exports_csv(make_app, scored_file):
    path, rows = scored_file
    client = _worklist(make_app, path)
    html = client.get("/population?applicability=not-applicable").get_data(as_text=True)
    assert "outside &#39;aged 40-79 (the Pooled Cohort Equations)&#39; (Age = 31)" in html
    resp = client.get("/population?band=warning&sort=patient&format=csv")
    assert resp.mimetype == "text/csv"
    lines = resp.get_data(as_text=True).strip().splitlines()
    ids = [line.split(",")[0] for line in lines[1:]]
    assert ids == sorted(pid for pid, r in rows.items() if r["indicator"] == "warning" and r["applicability"] == "applies")
    assert lines[1].split(",")[2] == "warning"
    incomplete = client.get("/population?missing=incomplete&format=csv").get_data(as_text=True).strip().splitlines()[1:]
    assert {line.split(",")[0] for line in incomplete} == {pid for pid, r in rows.items() if r["missing"] and r["applicability"] == "applies"}
    high = client.get("/population?min_risk=20&format=csv").get_data(as_text=True).strip().splitlines()[1:]
    assert high and all(float(line.split(",")[1]) >= 0.2 for line in high)


def test_worklist_without_a_scored_file_says_how_to_make_one(make_app, tmp_path):
    resp = _worklist(make_app, str(tmp_path / "nothing.parquet")).get("/population")
    assert resp.status_code == 404 and b"cds-service population score" in resp.data


@pytest.mark.parametrize("model_id, service_id, rows, differences", [
    # One WHAS500 patient has a diastolic pressure of 6 mm Hg: outside the service file's plausible range
    # (10-200), so the service reads it as missing (rejected) and gives no risk; training through the service's
    # features (`train --data`) leaves that row out, as the shipped model card says.
    ("whas500-1y-mortality", "post-mi-mortality", 460, {"dbp": 1}),
])
def test_training_table_rebuilt_from_fhir_through_the_service_features(tmp_path, model_id, service_id, rows, differences):
    """Item 5 (training–serving parity, data side): each training row written as FHIR and read back by
    `population dataset`'s per-patient code gives the training table's values and label, and the
    service's score of the patient equals the artifact's score of the tabular row."""
    require_module("sksurv", "pip install -e '.[train]'")  # the WHAS500 file ships inside scikit-survival
    from cds_service.population.training_exports import EXPORTS, INDEX, records

    (tmp_path / "outcome.toml").write_text(EXPORTS[model_id][1])
    job = Job(service_id, SETTINGS.hooks_dir, SETTINGS.model_dir, load_outcome(tmp_path / "outcome.toml"), flat=True)
    bound = _bound(service_id)
    names = bound.model.info.feature_names
    found: dict[str, int] = {}
    n = 0
    for row, resources in records(model_id):
        pid = resources[0]["id"]
        flat = process(job, pid, [json.dumps(r) for r in resources], INDEX)
        for k in names:
            found[k] = found.get(k, 0) + (flat[k] != row[k])
        assert flat["outcome"] == row["outcome"] and flat["applicability"] == "applies", pid
        assert flat["rejected"] == [k for k in names if flat[k] is None], pid  # recorded, but not plausible
        if n % 25 == 0 or any(flat[k] != row[k] for k in names):
            scored = score_patient(bound, pid, resources, INDEX)
            expected = bound.model.predict_values([row[k] for k in names])
            assert scored["score"] == (expected if all(flat[k] == row[k] for k in names) else None), pid
        n += 1
    assert n == rows and {k: v for k, v in found.items() if v} == differences


def test_from_dataset_command_writes_an_export(tmp_path, capsys):
    require_module("sksurv", "pip install -e '.[train]'")  # the WHAS500 file ships inside scikit-survival
    from cds_service.cli.main import main

    assert main(["population", "from-dataset", "whas500-1y-mortality", "--output", str(tmp_path)]) == 0
    assert sum(1 for _ in (tmp_path / "Patient.ndjson").open()) == 460
    assert sum(1 for _ in (tmp_path / "Encounter.ndjson").open()) == 460
    assert (tmp_path / "index_dates.csv").read_text().splitlines()[0] == "patient_id,index_date"
    assert load_outcome(tmp_path / "outcome.toml").death
    assert main(["population", "from-dataset", "nope", "--output", str(tmp_path)]) == 2
    assert main(["population", "score", "--service", "renal-dosing", "--input", str(tmp_path),
                 "--output", str(tmp_path / "x.parquet")]) == 2
    assert "order-s" in capsys.readouterr().err
