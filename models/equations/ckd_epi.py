"""CKD-EPI 2021 race-free creatinine equation for eGFR (Inker LA et al. NEJM 2021;385:1737-49).

eGFR = 142 × min(Scr/κ, 1)^α × max(Scr/κ, 1)^−1.200 × 0.9938^age × 1.012 [female]
κ = 0.7 (female) / 0.9 (male), α = −0.241 (female) / −0.302 (male); Scr in mg/dL
(µmol/L ÷ 88.42: the feature layer converts, `shared/clinical/equations.md`). Adults only.

Contributions are additive on the natural-log scale: ln eGFR = ln 142 (baseline) + creatinine term
(with the sex-specific κ and α) + age term + female factor.
"""
from __future__ import annotations

import math
from typing import Sequence

from ..feature_vector import FeatureVector
from ..model_card import Evidence, Performance
from ..protocol import ModelInfo, Prediction
from ..score_scale import QUANTITY, Band

INTERCEPT = 142.0
KAPPA = {True: 0.7, False: 0.9}  # keyed by "female"
ALPHA = {True: -0.241, False: -0.302}
EXPONENT_ABOVE_KAPPA = -1.200
AGE_BASE = 0.9938
FEMALE_FACTOR = 1.012
UMOL_PER_MG_DL = 88.42
MIN_AGE = 18

FEATURES = ("age", "female", "creatinine")

INFO = ModelInfo(
    id="ckd-epi-2021",
    version="2021.1",
    title="eGFR by the CKD-EPI 2021 race-free creatinine equation",
    population="Adults (age ≥ 18) with a standardised (IDMS-traceable) serum creatinine in steady state",
    outcome="Estimated glomerular filtration rate in mL/min/1.73 m² (not a risk)",
    citation="Inker LA et al. New Creatinine- and Cystatin C-Based Equations to Estimate GFR without Race. N Engl J Med 2021;385:1737-49",
    feature_names=FEATURES,
    required=FEATURES,
    scale=QUANTITY, unit="mL/min/{1.73_m2}", link="log", higher_is_better=True,
    labels={"creatinine": "Serum creatinine: min(Scr/κ, 1)^α × max(Scr/κ, 1)^-1.200",
            "age": "Age: 0.9938^age", "female": "Female sex: 1.012"},
    # KDIGO 2012 GFR categories (Kidney Int Suppl 2013;3:1-150), mL/min/1.73 m².
    bands=(Band(90, None, "G1: normal or high (≥ 90)"), Band(60, 90, "G2: mildly decreased (60-89)"),
           Band(45, 60, "G3a: mildly to moderately decreased (45-59)"), Band(30, 45, "G3b: moderately to severely decreased (30-44)"),
           Band(15, 30, "G4: severely decreased (15-29)"), Band(None, 15, "G5: kidney failure (< 15)")),
    evidence=Evidence(
        intended_use="Estimate GFR from a standardised serum creatinine, for CKD staging and drug dosing.",
        intended_user="Clinicians and pharmacists",
        out_of_scope=("Children and adolescents (< 18)", "Creatinine not in steady state: acute kidney injury, dialysis",
                      "Extremes of muscle mass (amputation, paraplegia, cachexia, bodybuilding), pregnancy",
                      "Drug labels that state their thresholds in Cockcroft-Gault creatinine clearance"),
        race_ethnicity="No: the 2021 equation was developed without race (race is a social, not a biological, construct); "
                       "sex is an input.",
        development="10 studies, 8,254 participants with measured GFR (31.5% Black) for the creatinine equation.",
        performance=(
            Performance("Validation set: 12 other studies, 4,050 participants (14.3% Black) with measured GFR",
                        "Median difference, measured minus estimated GFR",
                        "Black participants: 3.6 mL/min/1.73 m² (95% CI 1.8 to 5.5), an under-estimate; non-Black: "
                        "-3.9 (-4.4 to -3.4), an over-estimate; 85% or more of estimates within 30% of measured GFR in both",
                        "Inker LA et al. N Engl J Med 2021;385:1737-49", external=True),
        ),
        limitations=("An estimate: in the validation set up to about 1 in 7 estimates was more than 30% away from measured GFR.",
                     "Needs a creatinine in steady state: it lags behind a changing kidney function.",
                     "A small bias in each race group (median about 4 mL/min/1.73 m², in opposite directions).",
                     "Normalised to 1.73 m² body surface: for dosing in very large or very small people the absolute GFR differs."),
        fairness="Bias and accuracy (P30) reported for Black and non-Black participants in the validation set (above).",
        update="Used as published (Inker 2021), as the NKF-ASN task force recommends for US laboratories; the "
               "creatinine-cystatin C equation is more accurate where cystatin C is measured.",
    ),
)


def terms(creatinine_mg_dl: float, age: float, female: bool) -> dict[str, float]:
    """The ln-scale terms of the equation (without the intercept)."""
    if creatinine_mg_dl <= 0:
        raise ValueError("creatinine must be positive")
    if age < MIN_AGE:
        raise ValueError(f"CKD-EPI 2021 is for adults (age ≥ {MIN_AGE})")
    ratio = creatinine_mg_dl / KAPPA[female]
    creat = ALPHA[female] * math.log(min(ratio, 1.0)) + EXPONENT_ABOVE_KAPPA * math.log(max(ratio, 1.0))
    return {"creatinine": creat, "age": age * math.log(AGE_BASE), "female": math.log(FEMALE_FACTOR) if female else 0.0}


def egfr(creatinine_mg_dl: float, age: float, female: bool) -> float:
    """eGFR in mL/min/1.73 m² from creatinine in mg/dL, by the published product form."""
    terms(creatinine_mg_dl, age, female)  # domain checks
    ratio = creatinine_mg_dl / KAPPA[female]
    return (INTERCEPT * min(ratio, 1.0) ** ALPHA[female] * max(ratio, 1.0) ** EXPONENT_ABOVE_KAPPA * AGE_BASE ** age
            * (FEMALE_FACTOR if female else 1.0))


class CkdEpi2021:
    info = INFO

    def predict_values(self, values: Sequence[float]) -> float:
        x = dict(zip(FEATURES, values))
        return egfr(float(x["creatinine"]), float(x["age"]), float(x["female"]) >= 0.5)

    def predict(self, x: FeatureVector) -> Prediction:
        x.require(FEATURES)
        female = x.number("female") >= 0.5
        scr, age = x.number("creatinine"), x.number("age")
        contributions = terms(scr, age, female)
        score = egfr(scr, age, female)
        return Prediction(
            model=INFO.id, version=INFO.version, score=score, linear_predictor=math.log(score), baseline=math.log(INTERCEPT),
            contributions=contributions,
            details={"unit": "mL/min/{1.73_m2}", "scale": "natural log of eGFR",
                     "kappa": KAPPA[female], "alpha": ALPHA[female]},
        )
