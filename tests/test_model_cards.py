"""The published evidence of every equation (one home: its `ModelInfo`), and the decision-support source
attributes built from it or from a trained artifact's model card (ONC HTI-1, 45 CFR 170.315(b)(11)(iv))."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from models.equations import ada_risk_test, cha2ds2_vasc, has_bled, news2, qsofa
from models.model_card import source_attributes
from models.protocol import ModelInfo
from models.registry import EQUATIONS
from models.score_scale import LINKS, POINTS, PROBABILITY, QUANTITY

ROOT = Path(__file__).resolve().parent.parent
HTI1 = ("intended_use", "cautioned_out_of_scope_use", "input_features", "uses_race_ethnicity", "development_data",
        "validation", "external_validation", "fairness_assessment", "update_schedule", "known_limitations")
CITED = re.compile(r"(19|20)\d\d")


@pytest.mark.parametrize("model_id", sorted(EQUATIONS))
def test_every_equation_states_its_scale_bands_evidence_and_limits(model_id):
    info: ModelInfo = EQUATIONS[model_id].info
    assert info.link in LINKS
    assert (info.scale, info.link) in {(PROBABILITY, "cloglog"), (PROBABILITY, "logit"), (POINTS, "identity"), (QUANTITY, "log")}
    assert info.scale != QUANTITY or info.unit  # a quantity names its unit
    assert info.bands and all(b.label for b in info.bands)
    e = info.evidence
    assert e is not None and e.intended_use and e.out_of_scope and e.race_ethnicity and e.development and e.update
    assert e.performance and all(p.measure and p.value and CITED.search(p.source) for p in e.performance)
    assert e.limitations and e.fairness


def test_the_figures_the_committee_asks_about():
    pce, ckd = EQUATIONS["pce-goff-2013"].info.evidence, EQUATIONS["ckd-epi-2021"].info.evidence
    assert any("Over-estimates risk in contemporary cohorts" in x for x in pce.limitations)
    assert any(p.external and "DeFilippis" in p.source for p in pce.performance)
    assert pce.race_ethnicity.startswith("Yes") and ckd.race_ethnicity.startswith("No")
    assert "race-free" in EQUATIONS["ckd-epi-2021"].info.title
    chads = {p.source.split(" et al")[0]: p.value for p in EQUATIONS["cha2ds2-vasc"].info.evidence.performance}
    assert chads["Lip GYH"].startswith("0.606") and chads["Olesen JB"].startswith("0.888")
    bled = EQUATIONS["has-bled"].info.evidence.performance[0]
    assert bled.source.startswith("Pisters R") and bled.value.startswith("0.72")


@pytest.mark.parametrize("module, items", [
    (cha2ds2_vasc, lambda: cha2ds2_vasc.score_items({"age": 80, "female": 1})[0]),
    (has_bled, lambda: has_bled.score_items({"age": 80})[0]),
    (news2, lambda: news2.score_items({})[0]),
    (qsofa, lambda: qsofa.score_items({})[0]),
    (ada_risk_test, lambda: ada_risk_test.score_items({"age": 50, "female": 0, "bmi": 31})[0]),
])
def test_every_item_of_a_point_score_has_a_clinician_label(module, items):
    assert set(items()) <= set(module.INFO.labels)


@pytest.mark.parametrize("model_id", sorted(EQUATIONS))
def test_source_attributes_of_an_equation(model_id):
    info = EQUATIONS[model_id].info
    inputs = [{"name": n, "label": n.replace("_", " ").title(), "unit": None} for n in info.feature_names]
    a = source_attributes(info, inputs)
    assert a["kind"] == "published equation" and "170.315(b)(11)" in a["standard"]
    assert all(a[key] not in (None, "") for key in HTI1 if key not in ("external_validation",))
    assert [f["name"] for f in a["input_features"]] == list(info.feature_names)
    assert a["validation"] or a["external_validation"]
    json.dumps(a)  # JSON-ready


def test_source_attributes_of_a_trained_artifact_come_from_its_model_card():
    card = json.loads((ROOT / "models/artifacts/whas500-1y-mortality/2.1.0/model_card.json").read_text())
    info = ModelInfo("whas500-1y-mortality", "2.1.0", "WHAS500", card["population"], card["outcome"], card["citation"],
                     tuple(p["name"] for p in card["predictors"]))
    a = source_attributes(info, card=card)
    assert a["kind"] == "trained model" and a["intended_use"] == card["intended_use"]
    assert a["uses_race_ethnicity"].startswith("No")
    assert a["external_validation"] == [] and a["validation"][0]["measure"].startswith("AUROC")
    assert "sex female" in a["fairness_assessment"] and "age" in a["fairness_assessment"]
    assert a["known_limitations"] == card["limitations"] and "Not retrained on a schedule" in a["update_schedule"]
