"""ADA Diabetes Risk Test (the CDC/ADA Prediabetes Risk Test): Bang H et al. Development and validation of
a patient self-assessment score for diabetes risk. Ann Intern Med 2009;151:775-83; point table as published
by ADA and CDC ("How your test is scored"), which adds the gestational-diabetes item to Bang's model.

Age < 40: 0, 40-49: 1, 50-59: 2, >= 60: 3 · man 1 · woman with gestational diabetes 1 · mother, father,
sister or brother with diabetes 1 · ever diagnosed high blood pressure 1 · not physically active 1 ·
BMI < 25: 0, 25 to < 30: 1, 30 to < 40: 2, >= 40: 3 (Asian American people: < 23, 23 to < 28, 28 to < 37,
>= 37). Maximum 10 (the sex point is for men, the gestational point for women); 5 or more is high risk of prediabetes or undiagnosed type 2 diabetes.

Age, sex and BMI are required. A yes/no item whose input is missing scores 0 and is listed under
`details["not_assessed"]` (the total is then a lower bound); without a recorded race the general BMI bands
are used, which never score more than the Asian American bands, so the total stays a lower bound.
"""
from __future__ import annotations

from typing import Mapping

from ..model_card import Evidence, Performance
from ..protocol import ModelInfo
from ..score_scale import POINTS, Band
from .points import PointScore, required

FEATURES = ("age", "female", "bmi", "gdm_history", "family_history", "hypertension", "physically_inactive", "asian")
REQUIRED = ("age", "female", "bmi")
FLAGS = ("gdm_history", "family_history", "hypertension", "physically_inactive")
HIGH_RISK = 5
# Lower edges of the 1-, 2- and 3-point BMI bands (kg/m2).
BMI_BANDS = {"general": (25.0, 30.0, 40.0), "asian": (23.0, 28.0, 37.0)}

INFO = ModelInfo(
    id="ada-risk-test",
    version="2009.1",
    title="ADA Diabetes Risk Test (Bang 2009)",
    population="Adults without diagnosed diabetes (developed in NHANES 1999-2004, ages 20 and over)",
    outcome="Points 0-10; 5 or more: high risk of prediabetes or undiagnosed type 2 diabetes",
    citation="Bang H et al. Development and validation of a patient self-assessment score for diabetes risk. "
             "Ann Intern Med 2009;151:775-83 (ADA/CDC point table)",
    feature_names=FEATURES,
    required=REQUIRED,
    scale=POINTS, link="identity",
    labels={"age": "Age", "female": "Sex (men score 1)", "bmi": "Body-mass index", "gdm_history": "Gestational diabetes (women)",
            "family_history": "Parent or sibling with diabetes", "hypertension": "High blood pressure",
            "physically_inactive": "Not physically active", "asian": "Asian American (lower BMI bands)"},
    bands=(Band(0, HIGH_RISK, "0-4: lower risk"),
           Band(HIGH_RISK, None, "5-10: high risk of prediabetes or undiagnosed type 2 diabetes; test (HbA1c or fasting glucose)")),
    evidence=Evidence(
        intended_use="Find adults without diagnosed diabetes who are at high risk of prediabetes or undiagnosed type 2 "
                     "diabetes, so that they are tested.",
        intended_user="Clinicians in primary care (and patients, as a self-assessment)",
        out_of_scope=("Diagnosing diabetes: a glucose or HbA1c test is needed", "People with diagnosed diabetes",
                      "Pregnancy", "People under 20"),
        race_ethnicity="Only for Asian American people, whose BMI bands are lower (23, 28, 37 kg/m²) in the ADA/CDC point "
                       "table; without a recorded race the general bands are used (never more points).",
        development="NHANES 1999-2004: US adults aged 20 and over; outcome undiagnosed diabetes (fasting glucose ≥ 126 mg/dL).",
        performance=(
            Performance("Development: NHANES 1999-2004, cut-point 5 or more", "Sensitivity / specificity for undiagnosed diabetes",
                        "79% / 67% (positive predictive value 10%)", "Bang H et al. Ann Intern Med 2009;151:775-83"),
            Performance("Validation: ARIC and CHS community cohorts, cut-point 5 or more", "Sensitivity / specificity",
                        "72% / 62%", "Bang H et al. Ann Intern Med 2009;151:775-83", external=True),
            Performance("NHANES 2009-2012: 9,391 adults without known diabetes", "AUROC",
                        "undiagnosed diabetes 0.77; prediabetes 0.72-0.74",
                        "Poltavskiy E, Kim DJ, Bang H. Diabetes Res Clin Pract 2016;118:146-53", external=True),
        ),
        limitations=("A screening score, not a diagnosis.",
                     "Physical activity and family history are rarely coded: a missing item scores 0, so the total is a lower bound.",
                     "Developed for undiagnosed diabetes; its use for prediabetes rests on later validation."),
        fairness="Sex is an item (men score 1); race only through the Asian American BMI bands.",
        update="Used as published (the ADA/CDC point table).",
    ),
)


def age_points(age: float) -> int:
    return 3 if age >= 60 else 2 if age >= 50 else 1 if age >= 40 else 0


def bmi_points(bmi: float, asian: bool) -> int:
    one, two, three = BMI_BANDS["asian" if asian else "general"]
    return 3 if bmi >= three else 2 if bmi >= two else 1 if bmi >= one else 0


def score_items(x: Mapping[str, float | None]) -> tuple[dict[str, int], list[str]]:
    """Points per item and the items that could not be assessed (input None)."""
    for name in REQUIRED:
        if x.get(name) is None:
            raise ValueError(f"missing input: {name}")
    female = required(x, "female") >= 0.5
    asian = x.get("asian")
    points = {"age": age_points(required(x, "age")), "female": 0 if female else 1,
              "bmi": bmi_points(required(x, "bmi"), asian is not None and float(asian) >= 0.5), "asian": 0}
    not_assessed = [] if asian is not None else ["asian"]
    for name in FLAGS:
        v = x.get(name)
        if name == "gdm_history" and not female:
            points[name] = 0  # the item applies to women only
        elif v is None:
            not_assessed.append(name)
            points[name] = 0
        else:
            points[name] = 1 if float(v) >= 0.5 else 0
    return points, not_assessed


class AdaRiskTest(PointScore):
    info = INFO
    score_items = staticmethod(score_items)

    def details(self, total: float) -> dict:
        return {"maximum": 10, "high_risk_from": HIGH_RISK}
