"""CHA2DS2-VASc stroke risk score in non-valvular atrial fibrillation (Lip GYH et al. Chest 2010;137:263-72).

C congestive heart failure 1 · H hypertension 1 · A2 age ≥ 75 2 · D diabetes 1 · S2 prior stroke/TIA/
thromboembolism 2 · V vascular disease (prior MI, PAD, aortic plaque) 1 · A age 65–74 1 · Sc female 1.
Maximum 9. Contributions are the points of each item (baseline 0; linear predictor = total).

Age and sex are required. A condition input that is missing (None) is scored 0 and listed under
`details["not_assessed"]`, so the total is then a lower bound (never a silent "no").
"""
from __future__ import annotations

from typing import Mapping

from ..model_card import Evidence, Performance
from ..protocol import ModelInfo
from ..score_scale import POINTS as POINT_SCORE
from ..score_scale import Band
from .points import PointScore, reading, required, tally

FEATURES = ("age", "female", "chf", "hypertension", "diabetes", "stroke_tia", "vascular_disease")
REQUIRED = ("age", "female")
# Flags worth one point each, and stroke/TIA worth two.
POINTS = {"chf": 1, "hypertension": 1, "diabetes": 1, "stroke_tia": 2, "vascular_disease": 1, "female": 1}
ITEM_LABELS = {
    "chf": "C: congestive heart failure", "hypertension": "H: hypertension", "age": "A2/A: age ≥ 75 (2) or 65–74 (1)",
    "diabetes": "D: diabetes", "stroke_tia": "S2: prior stroke, TIA or thromboembolism",
    "vascular_disease": "V: vascular disease (prior MI, PAD, aortic plaque)", "female": "Sc: female sex",
}
# Adjusted stroke rate (%/year) by score, 2010 ESC AF guideline table (Euro Heart Survey); informational.
ADJUSTED_STROKE_RATE = {0: 0.0, 1: 1.3, 2: 2.2, 3: 3.2, 4: 4.0, 5: 6.7, 6: 9.8, 7: 9.6, 8: 6.7, 9: 15.2}

INFO = ModelInfo(
    id="cha2ds2-vasc",
    version="2010.1",
    title="CHA2DS2-VASc score (stroke risk in non-valvular AF)",
    population="Adults with non-valvular atrial fibrillation",
    outcome="Stroke and thromboembolism risk category (points 0–9)",
    citation="Lip GYH et al. Refining clinical risk stratification for predicting stroke and thromboembolism in atrial fibrillation "
             "using a novel risk factor-based approach: the Euro Heart Survey on AF. Chest 2010;137:263-72",
    feature_names=FEATURES,
    required=REQUIRED,
    scale=POINT_SCORE, link="identity", labels=ITEM_LABELS,
    # 2020 ESC AF guideline (Hindricks G et al. Eur Heart J 2021;42:373-498): the female point is a risk modifier.
    bands=(Band(0, 1, "0: low risk (men); no antithrombotic therapy"),
           Band(1, 2, "1: men, consider anticoagulation; women (the sex point only), low risk"),
           Band(2, 3, "2: men, anticoagulation recommended; women, consider anticoagulation"),
           Band(3, None, "≥ 3: anticoagulation recommended")),
    evidence=Evidence(
        intended_use="Estimate the risk of stroke and thromboembolism in non-valvular atrial fibrillation, to decide "
                     "on oral anticoagulation.",
        intended_user="Clinicians treating atrial fibrillation",
        out_of_scope=("Moderate-to-severe mitral stenosis or a mechanical heart valve: anticoagulation regardless of the score",
                      "People without atrial fibrillation", "Bleeding risk (HAS-BLED)"),
        race_ethnicity="No.",
        development="Euro Heart Survey on AF: 1,084 patients not on anticoagulation at baseline, 1 year of follow-up.",
        performance=(
            Performance("Derivation: Euro Heart Survey, 1,084 patients without anticoagulation, 1 year", "C statistic",
                        "0.606 (95% CI 0.513-0.699)", "Lip GYH et al. Chest 2010;137:263-72"),
            Performance("Danish nationwide cohort: 73,538 patients with non-valvular AF not on a vitamin K antagonist",
                        "C statistic of the risk groups, 10 years", "0.888 (0.875-0.900)",
                        "Olesen JB et al. BMJ 2011;342:d124", external=True),
            Performance("Meta-analysis: 6,267,728 patients with AF", "Pooled C statistic", "0.644 (0.635-0.653)",
                        "van der Endt VHW et al. Europace 2022;24:1739-53", external=True),
        ),
        limitations=("Modest discrimination (pooled C statistic about 0.64): it is best at finding the truly low-risk patients.",
                     "Every item is yes or no: long-standing treated hypertension counts like a new diagnosis.",
                     "Stroke rates per score vary between cohorts; the rate shown is the 2010 ESC guideline table's.",
                     "A condition missing from the problem list scores 0: the total is then a lower bound.",
                     "The 2024 ESC AF guideline uses CHA2DS2-VA (without the sex item)."),
        fairness="Female sex is an item (a risk modifier, ESC 2020). Performance by race or ethnicity is not reported in the derivation.",
        update="Used as published (Lip 2010).",
    ),
)


def age_points(age: float) -> int:
    return 2 if age >= 75 else 1 if age >= 65 else 0


def score_items(x: Mapping[str, float | None]) -> tuple[dict[str, int], list[str]]:
    """Points per item and the items that could not be assessed (input None)."""
    flags, not_assessed = tally(x, {name: (value, reading(name, lambda v: v >= 0.5)) for name, value in POINTS.items()}, REQUIRED)
    return {"age": age_points(required(x, "age")), **flags}, not_assessed


class Cha2ds2Vasc(PointScore):
    info = INFO
    score_items = staticmethod(score_items)

    def details(self, total: float) -> dict:
        return {"maximum": 9, "adjusted_stroke_rate_pct_per_year": ADJUSTED_STROKE_RATE[int(total)]}
