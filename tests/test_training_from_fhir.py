"""Training through the service's own feature code, end to end on the real WHAS500 data (Spark local mode).

`population from-dataset whas500-1y-mortality` writes the bundled table as a FHIR export; `population
dataset` (the job on the session-wide `spark` fixture) rebuilds it through post-mi-mortality's features;
`cds-service train whas500-1y-mortality --data` trains on it with the full 5 x 5 protocol and reproduces the
shipped artifact byte for byte. Training-serving parity: the table built from FHIR is the bundled table,
value for value and in the same order, but for the one row the service gives no risk (a diastolic pressure
of 6 mm Hg, outside its plausible range), and with that row dropped from the bundled table the protocol
trains the same network; the model card reports both trainings.

Time on an idle machine: about 10 s for the Spark job and 35 s for `train --data` (it trains the bundled table
too, for the card's comparison).
"""
from __future__ import annotations

import contextlib
import io
import json
import shutil

import numpy as np
import pytest

from cds_testing.optional import require_module
from cds_testing.paths import ROOT

require_module("pyspark", "pip install -e '.[population]'", allow_module_level=True)
require_module("sksurv", "pip install -e '.[train]' (the WHAS500 file ships inside scikit-survival)", allow_module_level=True)

from cds_service.cli.main import main  # noqa: E402
from cds_service.config import Settings  # noqa: E402
from cds_service.population.dataset import build, export_digest  # noqa: E402
from cds_service.population.jobs import Job  # noqa: E402
from cds_service.population.outcomes import load_outcome  # noqa: E402
from cds_service.population.training_exports import fhir_id  # noqa: E402
from hooks import SERVICES_DIR  # noqa: E402
from hooks.loader import data_definitions_sha256  # noqa: E402
from models import train as train_module  # noqa: E402
from models.datasets import SPECS, load_dataset  # noqa: E402

pytestmark = pytest.mark.timeout(600)  # Spark and two full trainings on a machine shared with other test runs
MODEL, VERSION, SERVICE = "whas500-1y-mortality", "2.1.0", "post-mi-mortality"
ARTIFACTS = ROOT / "models" / "artifacts"
SETTINGS = Settings.from_mapping({})


@pytest.fixture(scope="module")
def fhir_table(spark, tmp_path_factory):
    """The README's steps: from-dataset (the CLI), then the `population dataset` job. Returns (export, table)."""
    root = tmp_path_factory.mktemp("whas500-fhir")
    export, table = root / "export", root / "table.parquet"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["population", "from-dataset", MODEL, "--output", str(export)]) == 0
    job = Job(SERVICE, SETTINGS.hooks_dir, SETTINGS.model_dir, load_outcome(export / "outcome.toml"), flat=True)
    build(spark, job, str(export), str(table), outcome_file=str(export / "outcome.toml"),
          index_dates=str(export / "index_dates.csv"))
    return export, table


@pytest.fixture(scope="module")
def retrained(fhir_table, tmp_path_factory):
    """`cds-service train whas500-1y-mortality --data TABLE --out <copy of the committed artifacts>` (full protocol)."""
    _, table = fhir_table
    root = tmp_path_factory.mktemp("artifacts")
    shutil.copytree(ARTIFACTS, root, dirs_exist_ok=True)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["train", MODEL, "--data", str(table), "--out", str(root)])
    return code, buf.getvalue()


def test_the_shipped_artifact_is_what_training_through_the_service_features_builds(retrained):
    code, output = retrained
    assert code == 0, output
    assert output.splitlines()[0].startswith("identical: ") and output.splitlines()[0].endswith(f"{MODEL}/{VERSION}"), output
    metrics = json.loads((ARTIFACTS / MODEL / VERSION / "metrics.json").read_text())
    assert metrics["protocol"]["cv_repeats"] == 5
    cv = metrics["parity"]["cv"]
    assert (f"built from FHIR: CV AUROC {cv['this_artifact']['auroc']['mean']:.3f}" in output
            and f"own table      : CV AUROC {cv['reference']['auroc']['mean']:.3f}" in output), output
    assert "parity: trained on 459 of the 460 rows built from FHIR" in output


def test_the_table_records_what_built_it_and_the_card_names_it(fhir_table):
    export, table = fhir_table
    provenance = json.loads((table / "_provenance.json").read_text())
    service_file = SERVICES_DIR / f"{SERVICE}.toml"
    assert provenance["service"] == {"id": SERVICE, "hook": "encounter-discharge", "file": service_file.name,
                                     "data_definitions_sha256": data_definitions_sha256(service_file)}
    assert provenance["export"] == export_digest(str(export)) and provenance["export"]["ndjson_files"] == 4
    assert provenance["outcome"]["id"] == "whas500-death-1y" and "index_dates_sha256" in provenance["index"]
    assert str(export) not in json.dumps(provenance)  # content hashes, no paths: the same export gives the same record
    card = json.loads((ARTIFACTS / MODEL / VERSION / "model_card.json").read_text())
    source = card["data"]["built_from_fhir"]
    assert source["export_sha256"] == provenance["export"]["sha256"]
    assert source["data_definitions_sha256"] == provenance["service"]["data_definitions_sha256"]


def test_the_table_built_from_fhir_is_the_bundled_table_but_for_the_row_the_service_rejects(fhir_table):
    """Value for value, in the same order: the only row missing is the one whose diastolic pressure (6 mm Hg) the
    service rejects. Identical arrays train identical networks (the protocol is deterministic: the reproduction
    tests); one CV repeat of the logistic candidate shows it here, weights and every figure."""
    _, table = fhir_table
    spec = SPECS[MODEL]
    names = list(spec.feature_names)
    bundled = spec.load()
    from_fhir = load_dataset(table, spec)
    assert from_fhir.rows_read == len(bundled) == 460
    assert from_fhir.left_out == {"a model input missing: the service gives no risk": 1}
    assert from_fhir.missing_inputs == {"dbp": {"recorded but rejected by the service's rules": 1}}
    kept = bundled["row_id"].map(fhir_id).isin(set(from_fhir.table["row_id"]))
    (dropped,) = bundled.index[~kept]
    assert bundled.loc[dropped, "dbp"] == 6.0  # below post-mi-mortality's plausible range, 10-200 mm Hg
    same = bundled[kept].reset_index(drop=True)
    assert list(same["row_id"].map(fhir_id)) == list(from_fhir.table["row_id"])  # same order, so the same folds
    assert np.array_equal(same[names].to_numpy(), from_fhir.table[names].to_numpy())  # exact, not approximately
    assert np.array_equal(same["outcome"].to_numpy(), from_fhir.table["outcome"].to_numpy())

    torch = train_module._setup_torch(0)
    quick = (train_module.Candidate("logistic", 0, 1e-2),)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_module, "CANDIDATES", quick)
        a = train_module.develop(torch, spec, same, 0, 1)
        b = train_module.develop(torch, spec, from_fhir.table, 0, 1)
    sa, sb = a.net.state_dict(), b.net.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert json.dumps(a.metrics, sort_keys=True) == json.dumps(b.metrics, sort_keys=True)


def test_the_model_card_explains_the_difference_from_training_on_the_bundled_table():
    """Parity result, as the card and the README state it: the one rejected row is the whole difference."""
    card = json.loads((ARTIFACTS / MODEL / VERSION / "model_card.json").read_text())
    parity = card["training_serving_parity"]
    assert parity["rows"] == {"reference": 460, "dataset_read": 460, "dataset_used": 459}
    assert parity["cv"]["reference"]["rows"] == 460 and parity["cv"]["this_artifact"]["rows"] == 459
    assert parity["cv"]["reference"]["selected"] == parity["cv"]["this_artifact"]["selected"] == "logistic"
    md = (ARTIFACTS / MODEL / VERSION / "model_card.md").read_text()
    assert "## Training–serving parity" in md and "`dbp` recorded but rejected by the service's rules in 1" in md
    readme = (ROOT / "README.md").read_text()
    for key in ("this_artifact", "reference"):
        f = parity["cv"][key]
        assert f"{f['auroc']['mean']:.3f} ({f['auroc']['ci'][0]:.3f}–{f['auroc']['ci'][1]:.3f})" in readme, key
    gap = parity["risk_difference_on_reference_rows"]
    assert f"{100 * gap['max_abs']:.2f} percentage points" in md and f"{100 * gap['max_abs']:.1f} percentage points" in readme
