"""The local validation report of `cds-service population validate` in headless Chromium:
it renders with its three plots (inline SVG, nothing fetched) and its tables. The report is written by
the same function the command calls after its Spark job, from 400 synthetic scored patients."""
from __future__ import annotations

import numpy as np
import pytest

from cds_testing.optional import require_module

from .conftest import shot

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    require_module("pyarrow", "pip install -e '.[population]'")
    import pyarrow as pa

    from cds_service.config import Settings
    from cds_service.population.jobs import load_bound
    from cds_service.population.outcomes import Outcome
    from cds_service.population.report import write_report

    rng = np.random.default_rng(7)
    n = 400
    score = rng.beta(2, 12, n)
    outcome = (rng.random(n) < score).astype(int)
    sexes, races = np.array(["female", "male"]), np.array(["White", "Black or African American", "Asian", "not recorded"])
    table = pa.table({
        "score": score.tolist(), "outcome": outcome.tolist(), "applicability": ["applies"] * n, "error": [None] * n,
        "sex": sexes[rng.integers(0, 2, n)].tolist(), "race": races[rng.integers(0, 4, n)].tolist(),
        "ethnicity": ["not recorded"] * n, "age_band": np.array(["40-49", "50-59", "60-69", "70-79"])[rng.integers(0, 4, n)].tolist(),
    })
    settings = Settings.from_mapping({})
    out = tmp_path_factory.mktemp("report")
    outcome_def = Outcome("mi-1y", "Myocardial infarction within 1 year", 365, ("http://snomed.info/sct|22298006",))
    return write_report(out, table, service="ascvd-10y-risk", outcome=outcome_def,
                        bound=load_bound(settings.hooks_dir, settings.model_dir, "ascvd-10y-risk"))


def test_validation_report_renders_with_plots(page, report):
    page.set_content(report.read_text(encoding="utf-8"))
    for plot in ("roc", "calibration", "decision"):
        svg = page.locator(f"#plot-{plot} svg")
        assert svg.count() == 1
        box = svg.bounding_box()
        assert box and box["width"] > 200 and box["height"] > 200, (plot, box)
    assert "ROC curve" in page.locator("#plot-roc svg").get_attribute("aria-label")
    assert page.locator("#plot-calibration svg path").count() > 5  # the ideal line, the fit and the bin markers
    assert page.locator("#flow").inner_text().count("400") >= 2
    assert "AUROC" in page.locator("#overall").inner_text()
    rows = page.locator("#subgroups tr")
    assert rows.count() == 1 + 2 + 4 + 1 + 4  # header, sex, race, ethnicity, age band
    assert page.locator("#calibration tr").count() == 11
    shot(page, "population-validation-report")
