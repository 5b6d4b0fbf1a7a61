"""quick SOFA (Sepsis-3): Seymour CW et al. JAMA 2016;315:762-74; Singer M et al. JAMA 2016;315:801-10.

One point each for respiratory rate ≥ 22/min, systolic BP ≤ 100 mm Hg and altered mentation
(Seymour 2016: GCS < 15; an ACVPU other than Alert also means a GCS below 15; `altered_mentation` = 1).
A score ≥ 2 is positive: it flags adults with suspected infection at risk of a poor outcome; it is not a
diagnostic test for sepsis (Singer 2016). Contributions are the points of each criterion (baseline 0;
linear predictor = total). A missing criterion scores 0 and is listed under `details["not_assessed"]`
(the total is then a lower bound).
"""
from __future__ import annotations

from typing import Mapping

from ..model_card import Evidence, Performance
from ..protocol import ModelInfo
from ..score_scale import POINTS, Band
from .points import PointScore, reading, tally

FEATURES = ("resp_rate", "sbp", "altered_mentation")
RESP_RATE_MIN = 22.0
SBP_MAX = 100.0
POSITIVE = 2
CRITERIA_LABELS = {"resp_rate": "Respiratory rate ≥ 22/min", "sbp": "Systolic BP ≤ 100 mm Hg",
                   "altered_mentation": "Altered mentation (GCS < 15, or not Alert on ACVPU)"}

INFO = ModelInfo(
    id="qsofa",
    version="2016.1",
    title="quick SOFA (qSOFA, Sepsis-3)",
    population="Adults with suspected infection outside the ICU",
    outcome="Risk of a poor outcome (death, prolonged ICU stay) in suspected infection (points 0–3); ≥ 2 is positive; not a diagnostic test for sepsis",
    citation="Seymour CW et al. Assessment of Clinical Criteria for Sepsis. JAMA 2016;315:762-74; "
             "Singer M et al. The Third International Consensus Definitions for Sepsis and Septic Shock (Sepsis-3). JAMA 2016;315:801-10",
    feature_names=FEATURES,
    required=(),
    scale=POINTS, link="identity", labels=CRITERIA_LABELS,
    bands=(Band(0, 2, "0-1: negative"),
           Band(2, None, "2-3: positive, a higher risk of a poor outcome; assess for organ dysfunction")),
    evidence=Evidence(
        intended_use="Flag adults with suspected infection outside the ICU who are at higher risk of a poor outcome, "
                     "prompting an assessment for organ dysfunction.",
        intended_user="Clinicians outside the ICU",
        out_of_scope=("Diagnosing or screening for sepsis: the Surviving Sepsis Campaign (Evans L et al. Intensive Care Med "
                      "2021;47:1181-1247) recommends against qSOFA as a single screening tool",
                      "Patients in the ICU", "Children"),
        race_ethnicity="No.",
        development="Electronic records of 148,907 encounters with suspected infection at 12 hospitals (2010-2012), "
                    "validated in four external datasets (706,399 encounters at 165 hospitals).",
        performance=(
            Performance("Encounters with suspected infection outside the ICU", "AUROC for in-hospital mortality",
                        "0.81 (95% CI 0.80-0.82)", "Seymour CW et al. JAMA 2016;315:762-74"),
            Performance("Encounters with suspected infection in the ICU", "AUROC for in-hospital mortality",
                        "0.66 (0.64-0.68)", "Seymour CW et al. JAMA 2016;315:762-74"),
        ),
        limitations=("Low sensitivity: a negative qSOFA does not rule out sepsis.",
                     "A criterion that is not recorded scores 0: the total is then a lower bound.",
                     "Altered mentation is read from a GCS or ACVPU: a long-standing impairment counts like a new one."),
        fairness="Not reported by sex or by race or ethnicity.",
        update="Used as published (Sepsis-3, 2016).",
    ),
)


CRITERIA = {
    "resp_rate": (1, reading("resp_rate", lambda v: v >= RESP_RATE_MIN)),
    "sbp": (1, reading("sbp", lambda v: v <= SBP_MAX)),
    "altered_mentation": (1, reading("altered_mentation", lambda v: v >= 0.5)),
}


def score_items(x: Mapping[str, float | None]) -> tuple[dict[str, int], list[str]]:
    return tally(x, CRITERIA)


class QSofa(PointScore):
    info = INFO
    score_items = staticmethod(score_items)

    def details(self, total: float) -> dict:
        return {"positive": total >= POSITIVE}
