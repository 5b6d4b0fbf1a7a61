"""Plausible effects: every direction of effect a shipped artifact declares holds for the served model,
checked by perturbation over the whole training range (needs no training package: it loads the artifacts
as the service does). E.g. atrial fibrillation of the stay never lowers post-MI mortality."""
import json
from pathlib import Path

import numpy as np
import pytest

from models.artifacts import load_artifact

ARTIFACTS = Path(__file__).resolve().parent.parent / "models" / "artifacts"
SHIPPED = sorted(f"{d.parent.name}/{d.name}" for d in ARTIFACTS.glob("*/*") if (d / "manifest.json").is_file())


def grid_rows(norm: dict, names, n=400, seed=0) -> np.ndarray:
    """Rows spread over each input's training range (0/1 inputs drawn as 0 or 1)."""
    rng = np.random.default_rng(seed)
    cols = []
    for name in names:
        lo, hi = norm[name]["min"], norm[name]["max"]
        cols.append(rng.integers(0, 2, n).astype(float) if (lo, hi) == (0.0, 1.0) else rng.uniform(lo, hi, n))
    return np.stack(cols, axis=1)


def test_every_shipped_artifact_is_checked():
    assert {"whas500-1y-mortality/2.1.0", "monica-28d-case-fatality/1.0.0"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_declared_direction_holds_by_perturbation(name):
    model = load_artifact(ARTIFACTS, name)
    config = json.loads((ARTIFACTS / name / "config.json").read_text())
    norm = json.loads((ARTIFACTS / name / "normalisation.json").read_text())
    names = list(model.info.feature_names)
    directions = config["directions"]
    assert set(directions) == set(names), "every input declares a direction (+1, -1 or 0)"
    rows = grid_rows(norm, names)
    checked = 0
    for i, feature in enumerate(names):
        d = directions[feature]
        if d == 0:
            continue
        binary = (norm[feature]["min"], norm[feature]["max"]) == (0.0, 1.0)
        for row in rows:
            lo, hi = row.copy(), row.copy()
            if binary:
                lo[i], hi[i] = 0.0, 1.0
            else:
                hi[i] = row[i] + norm[feature]["sd"]
            delta = model.predict_values(hi.tolist()) - model.predict_values(lo.tolist())
            assert d * delta >= -1e-12, f"{name}: raising {feature} moves the risk against its declared direction ({delta:+.2e})"
        checked += 1
    assert checked >= 2, "at least two declared directions were checked"


def test_af_of_the_stay_never_lowers_post_mi_mortality():
    """The specific fault that prompted the check: AF on lowered the WHAS500 MLP's mortality (8.4% → 6.2%)."""
    model = load_artifact(ARTIFACTS, "whas500-1y-mortality/2.1.0")
    names = list(model.info.feature_names)
    base = dict(zip(names, model.net.mean.tolist()))
    for chf in (0.0, 1.0):
        off = [{**base, "afib": 0.0, "chf": chf}[n] for n in names]
        on = [{**base, "afib": 1.0, "chf": chf}[n] for n in names]
        assert model.predict_values(on) >= model.predict_values(off)
