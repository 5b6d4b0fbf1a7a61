"""ACC/AHA Pooled Cohort Equations for 10-year hard ASCVD risk (Goff DC Jr et al. 2013, Table A).

risk = 1 - S10 ** exp(sum(beta_i * x_i) - mean), one coefficient set per sex/race group.
Race: equations exist for white and African American adults; others use the white equations,
as the guideline says. Valid ages 40–79 (the service's population guard enforces this).
"""
from __future__ import annotations

import math
from itertools import combinations
from typing import Mapping, Sequence

from ..feature_vector import FeatureVector
from ..model_card import Evidence, Performance
from ..protocol import ModelInfo, Prediction
from ..score_scale import Band

# Coefficients at the ACC app's precision (shared/clinical/equations.md, "coefficients_acc_app_precision").
COEFFICIENTS: Mapping[str, Mapping[str, float]] = {
    "white_female": dict(ln_age=-29.799, ln_age_sq=4.884, ln_tc=13.54, ln_age_ln_tc=-3.114, ln_hdl=-13.578,
                         ln_age_ln_hdl=3.149, ln_sbp_tx=2.019, ln_age_ln_sbp_tx=0.0, ln_sbp_untx=1.957,
                         ln_age_ln_sbp_untx=0.0, smoker=7.574, ln_age_smoker=-1.665, diabetes=0.661,
                         mean=-29.1817, s10=0.96652),
    "black_female": dict(ln_age=17.1141, ln_age_sq=0.0, ln_tc=0.9396, ln_age_ln_tc=0.0, ln_hdl=-18.9196,
                         ln_age_ln_hdl=4.4748, ln_sbp_tx=29.2907, ln_age_ln_sbp_tx=-6.4321, ln_sbp_untx=27.8197,
                         ln_age_ln_sbp_untx=-6.0873, smoker=0.6908, ln_age_smoker=0.0, diabetes=0.8738,
                         mean=86.6081, s10=0.95334),
    "white_male": dict(ln_age=12.344, ln_age_sq=0.0, ln_tc=11.853, ln_age_ln_tc=-2.664, ln_hdl=-7.99,
                       ln_age_ln_hdl=1.769, ln_sbp_tx=1.797, ln_age_ln_sbp_tx=0.0, ln_sbp_untx=1.764,
                       ln_age_ln_sbp_untx=0.0, smoker=7.837, ln_age_smoker=-1.795, diabetes=0.658,
                       mean=61.1816, s10=0.91436),
    "black_male": dict(ln_age=2.469, ln_age_sq=0.0, ln_tc=0.302, ln_age_ln_tc=0.0, ln_hdl=-0.307,
                       ln_age_ln_hdl=0.0, ln_sbp_tx=1.916, ln_age_ln_sbp_tx=0.0, ln_sbp_untx=1.809,
                       ln_age_ln_sbp_untx=0.0, smoker=0.549, ln_age_smoker=0.0, diabetes=0.645,
                       mean=19.5425, s10=0.89536),
}

FEATURES = ("age", "female", "black", "total_cholesterol", "hdl", "sbp", "bp_treated", "smoker", "diabetes")
# Inputs that change the linear predictor; sex and race pick the coefficient set instead.
RISK_FACTORS = ("age", "total_cholesterol", "hdl", "sbp", "bp_treated", "smoker", "diabetes")
# Reference profile for explanations: a 55-year-old with the ACC "optimal" risk factors
# (TC 170 mg/dL, HDL 50 mg/dL, SBP 110 mm Hg untreated, non-smoker, no diabetes).
REFERENCE = {"age": 55.0, "total_cholesterol": 170.0, "hdl": 50.0, "sbp": 110.0, "bp_treated": 0.0, "smoker": 0.0, "diabetes": 0.0}

INFO = ModelInfo(
    id="pce-goff-2013",
    version="2013.1",
    title="ACC/AHA Pooled Cohort Equations (10-year hard ASCVD risk)",
    population="Adults aged 40–79 without clinical ASCVD, not on treatment for LDL ≥ 190 mg/dL",
    outcome="First hard ASCVD event (non-fatal MI, CHD death, fatal or non-fatal stroke) within 10 years",
    citation="Goff DC Jr et al. 2013 ACC/AHA Guideline on the Assessment of Cardiovascular Risk. Circulation 2014;129(25 Suppl 2):S49-S73",
    feature_names=FEATURES,
    required=("age", "female", "total_cholesterol", "hdl", "sbp", "bp_treated", "smoker", "diabetes"),
    link="cloglog",  # risk = 1 - S10^exp(lp - mean)
    # 2018 AHA/ACC cholesterol guideline (Grundy SM et al. Circulation 2019;139:e1082-e1143), 4.4.
    bands=(Band(None, 0.05, "Low risk (< 5%)"), Band(0.05, 0.075, "Borderline risk (5% to < 7.5%)"),
           Band(0.075, 0.20, "Intermediate risk (7.5% to < 20%)"), Band(0.20, None, "High risk (≥ 20%)")),
    evidence=Evidence(
        intended_use="Estimate the 10-year risk of a first hard ASCVD event in primary prevention, to inform the "
                     "clinician-patient discussion of statin therapy (2018 AHA/ACC cholesterol guideline).",
        intended_user="Clinicians in primary care and cardiology",
        out_of_scope=("Clinical ASCVD (secondary prevention): the equations estimate a first event",
                      "LDL-C ≥ 190 mg/dL, or age outside 40-79: treated without a risk estimate, or not derived there",
                      "Values measured on a statin: the equations expect untreated cholesterol",
                      "Lifetime or 30-year risk"),
        race_ethnicity="Yes: separate coefficients for African American and for white adults; adults of other races "
                       "use the white equations, as the guideline says. Without a recorded race the white equations are used.",
        development="Pooled individual data of five US community cohorts (ARIC, CHS, CARDIA, Framingham Original and "
                    "Offspring; baseline examinations 1968-1990), white and African American adults aged 40-79 free of ASCVD.",
        performance=(
            Performance("The derivation cohorts, internal validation", "C statistic",
                        "0.71 to 0.82 across the four sex and race groups", "Goff DC Jr et al. Circulation 2014;129(25 Suppl 2):S49-S73"),
            Performance("MESA: 4,227 adults aged 50-74 without diabetes, 10.2 years of follow-up", "Predicted against observed events",
                        "Over-estimated: by 37% to 154% in men and 8% to 67% in women across the ACC/AHA score and three "
                        "Framingham-based scores", "DeFilippis AP et al. Ann Intern Med 2015;162:266-75", external=True),
            Performance("15 external cohorts in the US and Europe, most more recent than the derivation data", "Calibration",
                        "Over-estimated the observed risk in almost all", "Cook NR, Ridker PM. Ann Intern Med 2016;165:786-94",
                        external=True),
        ),
        limitations=("Over-estimates risk in contemporary cohorts (event rates have fallen since the 1968-1990 baselines), "
                     "so a fixed threshold such as 7.5% selects more people than it did in the derivation data.",
                     "Only two race groups: other groups use the white equations, which may over- or under-estimate their risk.",
                     "Risk-enhancing factors (family history, CKD, chronic inflammatory disease, Lp(a), coronary calcium) are not "
                     "in the equations; the guideline weighs them beside the estimate."),
        fairness="Discrimination is reported per sex and race group (C statistics 0.71-0.82); calibration differs by group "
                 "and by cohort (above).",
        update="Used as published (the 2013 coefficients). It changes only when the guideline publishes a revision; "
               "local calibration can be checked with `cds-service population validate`.",
    ),
)


def group(female: float, black: float) -> str:
    return f"{'black' if black >= 0.5 else 'white'}_{'female' if female >= 0.5 else 'male'}"


def linear_predictor(c: Mapping[str, float], age: float, tc: float, hdl: float, sbp: float,
                     treated: float, smoker: float, diabetes: float) -> float:
    la, lt, lh, ls = math.log(age), math.log(tc), math.log(hdl), math.log(sbp)
    sbp_terms = (c["ln_sbp_tx"] + c["ln_age_ln_sbp_tx"] * la) if treated >= 0.5 else (c["ln_sbp_untx"] + c["ln_age_ln_sbp_untx"] * la)
    return (c["ln_age"] * la + c["ln_age_sq"] * la * la + c["ln_tc"] * lt + c["ln_age_ln_tc"] * la * lt
            + c["ln_hdl"] * lh + c["ln_age_ln_hdl"] * la * lh + sbp_terms * ls
            + (c["smoker"] + c["ln_age_smoker"] * la) * (1.0 if smoker >= 0.5 else 0.0)
            + c["diabetes"] * (1.0 if diabetes >= 0.5 else 0.0))


def risk_from_lp(c: Mapping[str, float], lp: float) -> float:
    return 1.0 - c["s10"] ** math.exp(lp - c["mean"])


# The linear predictor as a sum of product terms, coefficient x product of one function per risk factor:
# (coefficient key, ((risk factor, transform), ...)). The SBP terms are split by treatment, T the
# treated indicator: sbp_terms * ln SBP = c_untx ln SBP + (c_tx - c_untx) T ln SBP + c_age_untx ln age ln SBP
# + (c_age_tx - c_age_untx) T ln age ln SBP, so that every term is a product (the last one of three factors).
_LN, _FLAG = math.log, (lambda v: 1.0 if v >= 0.5 else 0.0)
TERMS: tuple[tuple[str, tuple[tuple[str, object], ...]], ...] = (
    ("ln_age", (("age", _LN),)),
    ("ln_age_sq", (("age", lambda v: math.log(v) ** 2),)),
    ("ln_tc", (("total_cholesterol", _LN),)),
    ("ln_age_ln_tc", (("age", _LN), ("total_cholesterol", _LN))),
    ("ln_hdl", (("hdl", _LN),)),
    ("ln_age_ln_hdl", (("age", _LN), ("hdl", _LN))),
    ("ln_sbp_untx", (("sbp", _LN),)),
    ("ln_sbp_tx-ln_sbp_untx", (("bp_treated", _FLAG), ("sbp", _LN))),
    ("ln_age_ln_sbp_untx", (("age", _LN), ("sbp", _LN))),
    ("ln_age_ln_sbp_tx-ln_age_ln_sbp_untx", (("bp_treated", _FLAG), ("age", _LN), ("sbp", _LN))),
    ("smoker", (("smoker", _FLAG),)),
    ("ln_age_smoker", (("age", _LN), ("smoker", _FLAG))),
    ("diabetes", (("diabetes", _FLAG),)),
)


def _coefficient(c: Mapping[str, float], key: str) -> float:
    first, _, second = key.partition("-")
    return c[first] - (c[second] if second else 0.0)


def _compile(terms):
    """Per term: its coefficient key, and per factor i: (risk factor, transform, reference value, and the
    Shapley weights of the other factors' coalitions as (weight, [(transform index, from x?)]))."""
    out = []
    for key, factors in terms:
        p = len(factors)
        refs = tuple(h(REFERENCE[name]) for name, h in factors)
        per_factor = []
        for i, (name, h) in enumerate(factors):
            others = [j for j in range(p) if j != i]
            coalitions = tuple((math.factorial(k) * math.factorial(p - k - 1) / math.factorial(p),
                                tuple((j, j in chosen) for j in others))
                               for k in range(p) for chosen in combinations(others, k))
            per_factor.append((i, name, coalitions))
        out.append((key, tuple(name for name, _ in factors), tuple(h for _, h in factors), refs, tuple(per_factor)))
    return tuple(out)


_COMPILED = _compile(TERMS)


def shapley_values(c: Mapping[str, float], x: Mapping[str, float]) -> dict[str, float]:
    """Exact Shapley values of the linear predictor against REFERENCE, in closed form.

    The equations have interaction terms (ln age x ln TC ...), so a per-term split would not be unique;
    Shapley values are, and they add up exactly to lp(x) - lp(reference). The Shapley value is linear in
    the game, so it is the sum over the predictor's product terms (TERMS) of each term's own Shapley
    values. For a term coef x prod_j h_j over factors P, with a_j = h_j(x_j) and b_j = h_j(reference_j),
    factor i gets coef (a_i - b_i) sum over S of P - {i} of |S|! (|P|-|S|-1)! / |P|! prod_S a_j prod_rest b_j:
    a main effect gets its whole change, each factor of a pairwise term (a_i - b_i)(a_j + b_j) / 2 (half
    of the joint change when both move). The same values as enumerating the 2^7 coalitions
    (tests/test_pce.py checks both on random patients), at a few percent of its cost.
    """
    out = dict.fromkeys(RISK_FACTORS, 0.0)
    for key, names, transforms, b, per_factor in _COMPILED:
        coef = _coefficient(c, key)
        if coef == 0.0:
            continue
        a = [h(x[name]) for name, h in zip(names, transforms)]
        for i, name, coalitions in per_factor:
            change = a[i] - b[i]
            if change == 0.0:
                continue
            weighted = 0.0
            for w, members in coalitions:
                prod = w
                for j, moved in members:
                    prod *= a[j] if moved else b[j]
                weighted += prod
            out[name] += coef * change * weighted
    return out


class PooledCohortEquations:
    info = INFO

    def predict_values(self, values: Sequence[float]) -> float:
        x = dict(zip(FEATURES, values))
        c = COEFFICIENTS[group(x["female"], x["black"])]
        lp = linear_predictor(c, x["age"], x["total_cholesterol"], x["hdl"], x["sbp"], x["bp_treated"], x["smoker"], x["diabetes"])
        return risk_from_lp(c, lp)

    def predict(self, x: FeatureVector) -> Prediction:
        x.require(self.info.required)
        v = {n: float(x[n].value or 0.0) for n in FEATURES}
        grp = group(v["female"], v["black"])
        c = COEFFICIENTS[grp]
        lp = linear_predictor(c, v["age"], v["total_cholesterol"], v["hdl"], v["sbp"], v["bp_treated"], v["smoker"], v["diabetes"])
        contributions = shapley_values(c, v)
        baseline = lp - sum(contributions.values())
        return Prediction(
            model=self.info.id,
            version=self.info.version,
            score=risk_from_lp(c, lp),
            linear_predictor=lp,
            baseline=baseline,
            contributions=contributions,
            details={"equation": grp, "reference": "age 55, TC 170, HDL 50, SBP 110 untreated, non-smoker, no diabetes"},
        )
