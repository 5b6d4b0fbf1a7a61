"""HAS-BLED 1-year major bleeding risk on anticoagulation in AF (Pisters R et al. Chest 2010;138:1093-1100).

H uncontrolled hypertension (systolic > 160 mm Hg) · A abnormal renal function (dialysis, transplant or
serum creatinine ≥ 200 µmol/L) · A abnormal liver function (cirrhosis, or bilirubin > 2× ULN with
AST/ALT/ALP > 3× ULN) · S stroke · B bleeding history or predisposition · L labile INR (time in
therapeutic range < 60 %, only on a vitamin K antagonist: `on_vka`) · E elderly (age > 65) · D drugs (antiplatelet or NSAID) · D alcohol
(≥ 8 units a week). One point each, maximum 9.

The published definitions (the numeric cut-offs above) live here, so that every service scores them
the same way. Contributions are keyed by item (baseline 0; linear predictor = total). An item none of
whose inputs is known, or that is negative only on the known inputs, is listed under
`details["not_assessed"]`: the total is then a lower bound.
"""
from __future__ import annotations

from typing import Callable, Mapping

from ..model_card import Evidence, Performance
from ..protocol import ModelInfo
from ..score_scale import POINTS, Band
from .ckd_epi import UMOL_PER_MG_DL
from .points import PointScore, tally

FEATURES = ("age", "sbp", "renal_disease", "creatinine", "liver_disease", "bilirubin_uln", "liver_enzymes_uln",
            "stroke", "bleeding", "inr_ttr", "on_vka", "antiplatelet_nsaid", "alcohol")
REQUIRED = ("age",)
SBP_UNCONTROLLED = 160.0  # mm Hg, strictly above
CREATININE_ABNORMAL_MG_DL = 200.0 / UMOL_PER_MG_DL  # ≥ 200 µmol/L = 2.262 mg/dL
BILIRUBIN_ULN_FACTOR = 2.0  # strictly above
ENZYMES_ULN_FACTOR = 3.0  # strictly above
TTR_LABILE_PCT = 60.0  # strictly below
ELDERLY_AGE = 65.0  # strictly above

ITEMS = ("uncontrolled_hypertension", "abnormal_renal", "abnormal_liver", "stroke", "bleeding", "labile_inr",
         "elderly", "drugs", "alcohol")
ITEM_LABELS = {
    "uncontrolled_hypertension": "H: uncontrolled hypertension (systolic > 160 mm Hg)",
    "abnormal_renal": "A: abnormal renal function (dialysis, transplant or creatinine ≥ 200 µmol/L)",
    "abnormal_liver": "A: abnormal liver function (cirrhosis, or bilirubin > 2× ULN with AST/ALT/ALP > 3× ULN)",
    "stroke": "S: stroke",
    "bleeding": "B: bleeding history or predisposition",
    "labile_inr": "L: labile INR (time in therapeutic range < 60 %)",
    "elderly": "E: elderly (age > 65)",
    "drugs": "D: antiplatelet or NSAID",
    "alcohol": "D: alcohol (≥ 8 units a week)",
}
# Which inputs feed each item.
ITEM_INPUTS = {
    "uncontrolled_hypertension": ("sbp",), "abnormal_renal": ("renal_disease", "creatinine"),
    "abnormal_liver": ("liver_disease", "bilirubin_uln", "liver_enzymes_uln"), "stroke": ("stroke",),
    "bleeding": ("bleeding",), "labile_inr": ("on_vka", "inr_ttr"), "elderly": ("age",), "drugs": ("antiplatelet_nsaid",),
    "alcohol": ("alcohol",),
}
# Bleeds per 100 patient-years by score in the derivation cohort (Pisters 2010); informational.
BLEEDS_PER_100_PY = {0: 1.13, 1: 1.02, 2: 1.88, 3: 3.74, 4: 8.7, 5: 12.5}

INFO = ModelInfo(
    id="has-bled",
    version="2010.1",
    title="HAS-BLED score (1-year major bleeding risk on anticoagulation in AF)",
    population="Adults with atrial fibrillation considered for or on anticoagulation",
    outcome="Major bleeding risk category (points 0–9); ≥ 3 flags high risk",
    citation="Pisters R et al. A novel user-friendly score (HAS-BLED) to assess 1-year risk of major bleeding in patients with "
             "atrial fibrillation: the Euro Heart Survey. Chest 2010;138:1093-1100",
    feature_names=FEATURES,
    required=REQUIRED,
    scale=POINTS, link="identity", labels=ITEM_LABELS,
    # 2020 ESC AF guideline: a high score flags modifiable risk factors and closer review, not a reason to withhold.
    bands=(Band(0, 3, "0-2: low to moderate bleeding risk"),
           Band(3, None, "≥ 3: high bleeding risk; address modifiable risk factors and review more often")),
    evidence=Evidence(
        intended_use="Estimate the 1-year risk of major bleeding in atrial fibrillation patients considered for or on "
                     "anticoagulation, to flag modifiable bleeding risk factors and plan follow-up.",
        intended_user="Clinicians treating atrial fibrillation",
        out_of_scope=("Withholding anticoagulation on the score alone", "People without atrial fibrillation"),
        race_ethnicity="No.",
        development="Euro Heart Survey on AF: 3,978 patients with complete 1-year follow-up, 53 major bleeds (1.5%).",
        performance=(
            Performance("Derivation: Euro Heart Survey, 3,978 patients, 53 major bleeds", "C statistic",
                        "0.72 for the derivation model, similar for HAS-BLED; 0.91 on antiplatelet therapy alone and 0.85 "
                        "without antithrombotic therapy", "Pisters R et al. Chest 2010;138:1093-1100"),
            Performance("Loire Valley AF cohort (four hospitals, 2000-2010)", "C statistic",
                        "About 0.6 for every bleeding score tested, on a vitamin K antagonist or not",
                        "Lip GYH et al. Circ Arrhythm Electrophysiol 2012;5:941-8", external=True),
        ),
        limitations=("Modest discrimination outside the derivation cohort (C statistic about 0.6).",
                     "Labile INR counts only on a vitamin K antagonist; time in therapeutic range is rarely in the record.",
                     "An item none of whose inputs is recorded scores 0: the total is then a lower bound."),
        fairness="Not reported by sex or by race or ethnicity in the derivation.",
        update="Used as published (Pisters 2010).",
    ),
)


def _flag(v: float | None) -> bool | None:
    return None if v is None else float(v) >= 0.5


def _above(v: float | None, limit: float) -> bool | None:
    return None if v is None else float(v) > limit


def _any(*parts: bool | None) -> bool | None:
    """Three-valued OR: True if any part is True, False if all are False, None otherwise."""
    if any(p is True for p in parts):
        return True
    return False if all(p is False for p in parts) else None


def _all(*parts: bool | None) -> bool | None:
    if any(p is False for p in parts):
        return False
    return True if all(p is True for p in parts) else None


def _labile(x: Mapping[str, float | None]) -> bool | None:
    """"Labile INRs (if on warfarin)": not on a vitamin K antagonist → 0, whatever old INRs say."""
    if _flag(x.get("on_vka")) is False:
        return False
    ttr = x.get("inr_ttr")
    return None if ttr is None else float(ttr) < TTR_LABILE_PCT


RULES: Mapping[str, Callable[[Mapping[str, float | None]], bool | None]] = {
    "uncontrolled_hypertension": lambda x: _above(x.get("sbp"), SBP_UNCONTROLLED),
    "abnormal_renal": lambda x: _any(_flag(x.get("renal_disease")),
                                     None if (scr := x.get("creatinine")) is None else scr >= CREATININE_ABNORMAL_MG_DL),
    "abnormal_liver": lambda x: _any(_flag(x.get("liver_disease")),
                                     _all(_above(x.get("bilirubin_uln"), BILIRUBIN_ULN_FACTOR),
                                          _above(x.get("liver_enzymes_uln"), ENZYMES_ULN_FACTOR))),
    "stroke": lambda x: _flag(x.get("stroke")),
    "bleeding": lambda x: _flag(x.get("bleeding")),
    "labile_inr": lambda x: _labile(x),
    "elderly": lambda x: _above(x.get("age"), ELDERLY_AGE),
    "drugs": lambda x: _flag(x.get("antiplatelet_nsaid")),
    "alcohol": lambda x: _flag(x.get("alcohol")),
}


def score_items(x: Mapping[str, float | None]) -> tuple[dict[str, int], list[str]]:
    return tally(x, {item: (1, RULES[item]) for item in ITEMS}, REQUIRED)


class HasBled(PointScore):
    info = INFO
    score_items = staticmethod(score_items)

    def details(self, total: float) -> dict:
        return {"maximum": 9, "bleeds_per_100_patient_years": BLEEDS_PER_100_PY.get(int(total))}
