"""National Early Warning Score 2 (Royal College of Physicians 2017, Chart 1 and Chart 2).

Seven parameters: respiration rate, SpO2 (Scale 1, or Scale 2 for a prescribed 88–92 % target in
hypercapnic respiratory failure), air or oxygen, systolic BP, pulse, consciousness (ACVPU: any new
confusion, V, P or U scores 3; a GCS is not ACVPU) and temperature, all from one set of observations
taken together. Contributions are the points of each parameter
(baseline 0; linear predictor = total).

Rounding (the chart's resolution): temperature to 0.1 °C, every other parameter to a whole number,
half away from zero, before the band is looked up.

Nothing is assumed normal: a parameter whose input is missing scores 0, is listed under
`details["not_assessed"]` and makes `details["complete"]` false (the total is then a lower bound).
`hypercapnic_target` only selects the SpO2 scale; when it is unknown, Scale 1 is used.
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Callable, Mapping, Sequence

from ..feature_vector import FeatureVector
from ..model_card import Evidence, Performance
from ..protocol import ModelInfo, Prediction
from ..score_scale import POINTS, Band

FEATURES = ("resp_rate", "spo2", "on_oxygen", "hypercapnic_target", "sbp", "pulse", "consciousness", "temperature")
PARAMETERS = ("resp_rate", "spo2", "on_oxygen", "sbp", "pulse", "consciousness", "temperature")
PARAMETER_LABELS = {
    "resp_rate": "Respiration rate", "spo2": "SpO2", "on_oxygen": "Air or oxygen", "sbp": "Systolic blood pressure",
    "pulse": "Pulse", "consciousness": "Consciousness (ACVPU)", "temperature": "Temperature",
}

INFO = ModelInfo(
    id="news2",
    version="2017.1",
    title="National Early Warning Score 2 (NEWS2)",
    population="Adults (age ≥ 16) in hospital or at first contact; not validated in pregnancy or for children",
    outcome="Acute-illness severity (points 0–20) and clinical risk band: low, low-medium, medium, high",
    citation="Royal College of Physicians. National Early Warning Score (NEWS) 2: Standardising the assessment of "
             "acute-illness severity in the NHS. London: RCP, 2017",
    feature_names=FEATURES,
    required=(),
    scale=POINTS, link="identity", labels=PARAMETER_LABELS,
    # RCP 2017, Chart 2 (thresholds and triggers).
    bands=(Band(0, 5, "0-4: low clinical risk (a 3 in any single parameter: low-medium, urgent ward-based response)"),
           Band(5, 7, "5-6: medium clinical risk, urgent response"), Band(7, None, "≥ 7: high clinical risk, emergency response")),
    evidence=Evidence(
        intended_use="Track the severity of acute illness from routine vital signs in adults and trigger the escalation of "
                     "the clinical response the RCP sets out.",
        intended_user="Nurses and doctors caring for adults in hospital or at first contact",
        out_of_scope=("Children (under 16) and pregnancy: not validated", "Spinal cord injury: no validated adjustment",
                      "Replacing clinical judgement: the score supports the assessment",
                      "SpO2 Scale 2 without a prescribed 88-92% target in hypercapnic respiratory failure"),
        race_ethnicity="No. Pulse oximetry can over-estimate SpO2 in people with darker skin (Sjoding MW et al. N Engl J "
                       "Med 2020;383:2477-8), which lowers the SpO2 points.",
        development="Expert consensus of the Royal College of Physicians on NEWS (2012); NEWS2 (2017) added SpO2 Scale 2 "
                    "and new confusion.",
        performance=(
            Performance("NEWS: 35,585 consecutive acute medical admissions, 198,755 observation sets", "AUROC within 24 h",
                        "death 0.894 (0.887-0.902); unanticipated ICU admission 0.857 (0.847-0.868); cardiac arrest "
                        "0.722 (0.685-0.759); any of these 0.873 (0.866-0.879)",
                        "Smith GB et al. Resuscitation 2013;84:465-70"),
        ),
        limitations=("The evidence is mostly for NEWS (2012); the NEWS2 changes (Scale 2, new confusion) have less.",
                     "Needs a complete set of observations taken together; a missing parameter scores 0 here and the total "
                     "is then a lower bound.",
                     "Pulse oximetry bias in darker skin can hide hypoxaemia."),
        fairness="Not reported by sex or by race or ethnicity in the validation above (see the pulse oximetry note).",
        update="Used as published (RCP 2017).",
    ),
)


def round_half_up(value: float, digits: int = 0) -> float:
    """Round as a chart is read: 35.05 → 35.1, 20.5 → 21 (decimal arithmetic, so 35.05 is not 35.04999…)."""
    return float(Decimal(str(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def resp_rate_points(rr: float) -> int:
    rr = round_half_up(rr)
    return 3 if rr <= 8 else 1 if rr <= 11 else 0 if rr <= 20 else 2 if rr <= 24 else 3


def spo2_scale1_points(spo2: float) -> int:
    s = round_half_up(spo2)
    return 3 if s <= 91 else 2 if s <= 93 else 1 if s <= 95 else 0


def spo2_scale2_points(spo2: float, on_oxygen: bool | None) -> int | None:
    """Scale 2; None when the points depend on oxygen (SpO2 ≥ 93) and that is unknown."""
    s = round_half_up(spo2)
    if s <= 83:
        return 3
    if s <= 85:
        return 2
    if s <= 87:
        return 1
    if s <= 92:
        return 0
    if on_oxygen is None:
        return None
    if not on_oxygen:
        return 0  # ≥ 93 on air
    return 1 if s <= 94 else 2 if s <= 96 else 3


def sbp_points(sbp: float) -> int:
    s = round_half_up(sbp)
    return 3 if s <= 90 else 2 if s <= 100 else 1 if s <= 110 else 0 if s <= 219 else 3


def pulse_points(pulse: float) -> int:
    p = round_half_up(pulse)
    return 3 if p <= 40 else 1 if p <= 50 else 0 if p <= 90 else 1 if p <= 110 else 2 if p <= 130 else 3


def temperature_points(temp_c: float) -> int:
    t = round_half_up(temp_c, 1)
    return 3 if t <= 35.0 else 1 if t <= 36.0 else 0 if t <= 38.0 else 1 if t <= 39.0 else 2


def score_items(x: Mapping[str, float | None]) -> tuple[dict[str, int], list[str], int]:
    """(points per parameter, parameters not assessed, SpO2 scale used)."""
    def flag(name):
        v = x.get(name)
        return None if v is None else float(v) >= 0.5

    scale = 2 if flag("hypercapnic_target") else 1
    on_oxygen = flag("on_oxygen")
    points: dict[str, int] = {}
    not_assessed: list[str] = []

    def put(name: str, value: int | None):
        points[name] = value or 0
        if value is None:
            not_assessed.append(name)

    def scored(name: str, points_of: Callable[[float], int]) -> int | None:
        value = x.get(name)
        return None if value is None else points_of(float(value))

    put("resp_rate", scored("resp_rate", resp_rate_points))
    spo2 = x.get("spo2")
    if spo2 is None:
        put("spo2", None)
    else:
        put("spo2", spo2_scale2_points(float(spo2), on_oxygen) if scale == 2 else spo2_scale1_points(float(spo2)))
    put("on_oxygen", None if on_oxygen is None else (2 if on_oxygen else 0))
    put("sbp", scored("sbp", sbp_points))
    put("pulse", scored("pulse", pulse_points))
    put("consciousness", None if flag("consciousness") is None else (3 if flag("consciousness") else 0))
    put("temperature", scored("temperature", temperature_points))
    return points, not_assessed, scale


class News2:
    info = INFO

    def predict_values(self, values: Sequence[float | None]) -> float:
        points, _, _ = score_items(dict(zip(FEATURES, values)))
        return float(sum(points.values()))

    def predict(self, x: FeatureVector) -> Prediction:
        points, not_assessed, scale = score_items({n: x[n].value for n in FEATURES})
        total = float(sum(points.values()))
        return Prediction(
            model=INFO.id, version=INFO.version, score=total, linear_predictor=total, baseline=0.0,
            contributions={k: float(v) for k, v in points.items()},
            details={"unit": "points", "spo2_scale": scale, "max_parameter_points": max(points.values()),
                     "complete": not not_assessed, "not_assessed": not_assessed,
                     "assessed": len(PARAMETERS) - len(not_assessed)},
        )
