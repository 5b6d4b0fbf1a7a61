"""Cockcroft-Gault creatinine clearance (Cockcroft DW, Gault MH. Nephron 1976;16:31-41).

CrCl (mL/min, not normalised to body surface) = (140 − age) × weight[kg] / (72 × Scr[mg/dL]) × 0.85 [female].
DOAC labels state their renal thresholds in this CrCl, with actual body weight.

Contributions are additive on the natural-log scale: ln CrCl = −ln 72 (baseline) + ln(140 − age)
+ ln(weight) − ln(Scr) + ln 0.85 [female].
"""
from __future__ import annotations

import math
from typing import Sequence

from ..feature_vector import FeatureVector
from ..model_card import Evidence, Performance
from ..protocol import ModelInfo, Prediction
from ..score_scale import QUANTITY, Band

AGE_CONSTANT = 140.0
DIVISOR = 72.0
FEMALE_FACTOR = 0.85
MIN_AGE = 18

FEATURES = ("age", "female", "creatinine", "weight")

INFO = ModelInfo(
    id="cockcroft-gault-1976",
    version="1976.1",
    title="Creatinine clearance by the Cockcroft-Gault equation (actual body weight)",
    population="Adults with a serum creatinine in steady state; actual body weight",
    outcome="Estimated creatinine clearance in mL/min (not a risk, not BSA-normalised)",
    citation="Cockcroft DW, Gault MH. Prediction of creatinine clearance from serum creatinine. Nephron 1976;16:31-41",
    feature_names=FEATURES,
    required=FEATURES,
    scale=QUANTITY, unit="mL/min", link="log", higher_is_better=True,
    labels={"age": "Age: 140 - age", "weight": "Body weight: kg", "creatinine": "Serum creatinine: 1 / Scr (mg/dL)",
            "female": "Female sex: 0.85"},
    # The thresholds DOAC labels use most; the card applies each drug's own.
    bands=(Band(50, None, "≥ 50 mL/min"), Band(30, 50, "30-49 mL/min"), Band(15, 30, "15-29 mL/min"),
           Band(None, 15, "< 15 mL/min")),
    evidence=Evidence(
        intended_use="Estimate creatinine clearance for drug dosing where the label states its thresholds in "
                     "Cockcroft-Gault creatinine clearance (e.g. the direct oral anticoagulants).",
        intended_user="Clinicians and pharmacists",
        out_of_scope=("CKD staging (eGFR is the measure)", "Creatinine not in steady state: acute kidney injury, dialysis",
                      "Children"),
        race_ethnicity="No.",
        development="249 men aged 18-92 with two 24-hour urine creatinine clearances; the 0.85 factor for women was "
                    "assumed, not derived.",
        performance=(
            Performance("The 249 men of the derivation", "Correlation with measured creatinine clearance", "r = 0.83",
                        "Cockcroft DW, Gault MH. Nephron 1976;16:31-41"),
        ),
        limitations=("Derived before creatinine assays were standardised (IDMS): with today's lower creatinine values it "
                     "tends to over-estimate clearance.",
                     "Actual body weight over-estimates clearance in obesity.",
                     "The factor for women is an assumption; not normalised to body surface area."),
        fairness="Not assessed: the derivation included men only.",
        update="Used as published; drug labels use it as written.",
    ),
)


def terms(creatinine_mg_dl: float, age: float, weight_kg: float, female: bool) -> dict[str, float]:
    if creatinine_mg_dl <= 0 or weight_kg <= 0:
        raise ValueError("creatinine and weight must be positive")
    if not MIN_AGE <= age < AGE_CONSTANT:
        raise ValueError(f"Cockcroft-Gault needs an adult age below {AGE_CONSTANT:g}")
    return {"age": math.log(AGE_CONSTANT - age), "weight": math.log(weight_kg), "creatinine": -math.log(creatinine_mg_dl),
            "female": math.log(FEMALE_FACTOR) if female else 0.0}


def crcl(creatinine_mg_dl: float, age: float, weight_kg: float, female: bool) -> float:
    """Creatinine clearance in mL/min, by the formula's own arithmetic (so CrCl 15.0 is exactly 15.0 at a label threshold)."""
    terms(creatinine_mg_dl, age, weight_kg, female)  # domain checks
    return (AGE_CONSTANT - age) * weight_kg / (DIVISOR * creatinine_mg_dl) * (FEMALE_FACTOR if female else 1.0)


class CockcroftGault:
    info = INFO

    def predict_values(self, values: Sequence[float]) -> float:
        x = dict(zip(FEATURES, values))
        return crcl(float(x["creatinine"]), float(x["age"]), float(x["weight"]), float(x["female"]) >= 0.5)

    def predict(self, x: FeatureVector) -> Prediction:
        x.require(FEATURES)
        args = (x.number("creatinine"), x.number("age"), x.number("weight"), x.number("female") >= 0.5)
        contributions = terms(*args)
        score = crcl(*args)
        return Prediction(model=INFO.id, version=INFO.version, score=score, linear_predictor=math.log(score), baseline=-math.log(DIVISOR),
                          contributions=contributions, details={"unit": "mL/min", "scale": "natural log of CrCl"})
