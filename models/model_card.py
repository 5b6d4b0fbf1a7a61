"""Model cards: the JSON + markdown card written beside each trained artifact, following the TRIPOD items
that apply to a model developed and internally validated on one dataset (Collins et al., BMJ
2015;350:g7594); the published evidence of each equation (`Evidence`, held by its `ModelInfo`); and the
decision-support source attributes a hospital's AI committee asks for, from either (`source_attributes`).

Source attributes follow the categories of ONC HTI-1, 45 CFR 170.315(b)(11)(iv): intended use, cautioned
out-of-scope use, input features (including the use of race and ethnicity), development and validation
data, fairness assessment, external validation and the update schedule.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

SOURCE_ATTRIBUTES_STANDARD = "ONC HTI-1, 45 CFR 170.315(b)(11)(iv) decision support intervention source attributes"


@dataclass(frozen=True, slots=True)
class Performance:
    """One published validation figure, as its source reports it."""

    population: str  # the cohort: who, where, how many
    measure: str  # C statistic, AUROC, median bias, sensitivity / specificity…
    value: str  # with its confidence interval when published
    source: str  # citation
    external: bool = False  # on data other than the developers' own


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a clinician or an AI committee needs to judge a published equation, in one place."""

    intended_use: str
    intended_user: str
    out_of_scope: tuple[str, ...]
    race_ethnicity: str  # whether and how race or ethnicity is an input
    development: str  # the data it was developed on
    performance: tuple[Performance, ...]
    limitations: tuple[str, ...]
    fairness: str  # what is known of its performance across groups
    update: str  # how and when it changes

    def to_json(self) -> dict[str, Any]:
        return {"intended_use": self.intended_use, "intended_user": self.intended_user,
                "out_of_scope": list(self.out_of_scope), "race_ethnicity": self.race_ethnicity,
                "development": self.development, "performance": [_performance(p) for p in self.performance],
                "limitations": list(self.limitations), "fairness": self.fairness, "update": self.update}


def _performance(p: Performance) -> dict[str, Any]:
    return {"population": p.population, "measure": p.measure, "value": p.value, "source": p.source, "external": p.external}


def source_attributes(info, inputs: Iterable[Mapping[str, Any]] = (), card: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The source attributes of a model as JSON: from the equation's `Evidence`, or for a trained artifact
    from its `model_card.json` (`card`). `inputs` are the service's inputs ({name, label, unit}) the model reads."""
    wanted = set(info.feature_names)
    features = [{"name": f["name"], "label": f.get("label"), "unit": f.get("unit")} for f in inputs if f["name"] in wanted]
    out: dict[str, Any] = {
        "standard": SOURCE_ATTRIBUTES_STANDARD,
        "model": {"id": info.id, "version": info.version, "title": info.title},
        "output": info.outcome,
        "intended_population": info.population,
        "input_features": features or [{"name": n} for n in info.feature_names],
        "citation": info.citation,
    }
    if card is not None:
        out.update(_from_card(card))
    elif info.evidence is not None:
        e = info.evidence
        out.update({"kind": "published equation", "intended_use": e.intended_use, "intended_user": e.intended_user,
                    "cautioned_out_of_scope_use": list(e.out_of_scope), "uses_race_ethnicity": e.race_ethnicity,
                    "development_data": e.development,
                    "validation": [_performance(p) for p in e.performance if not p.external],
                    "external_validation": [_performance(p) for p in e.performance if p.external],
                    "fairness_assessment": e.fairness, "known_limitations": list(e.limitations),
                    "update_schedule": e.update})
    else:
        out["kind"] = "not documented"
    return out


def _from_card(card: Mapping[str, Any]) -> dict[str, Any]:
    """A trained artifact's source attributes, every figure from its model card (written at training)."""
    perf, data = card.get("performance") or {}, card.get("data") or {}
    cv = perf.get("cv") or {}
    predictors = card.get("predictors") or []
    race = [p["label"] for p in predictors if any(w in (p.get("name") or "") for w in ("race", "black", "ethnic", "asian"))]
    validation = []
    if cv.get("auroc"):
        a = cv["auroc"]
        validation.append({"population": f"{data.get('rows')} patients, {data.get('events')} events "
                                          f"(repeated cross-validation, {a.get('folds')} held-out folds)",
                           "measure": "AUROC (mean, 95% CI)", "value": _ci(a), "source": "this artifact's metrics.json",
                           "external": False})
    if cv.get("calibration_slope"):
        validation.append({"population": "same folds", "measure": "Calibration slope (ideal 1)",
                           "value": _ci(cv["calibration_slope"], 2), "source": "this artifact's metrics.json", "external": False})
    subgroups = perf.get("subgroups") or {}
    fairness = "; ".join(f"{group} {label}: AUROC {_fmt(s.get('auroc'))}, calibration slope {_fmt(s.get('calibration_slope'), 2)} "
                         f"(n {s.get('n')}, {s.get('events')} events)"
                         for group, bands in subgroups.items() for label, s in bands.items())
    limitations = list(card.get("limitations") or [])
    return {
        "kind": "trained model",
        "intended_use": card.get("intended_use"),
        "intended_user": "Clinicians (decision support; the card explains its inputs)",
        "cautioned_out_of_scope_use": [f"Patients outside the development population: {card.get('eligibility')}", *limitations],
        "uses_race_ethnicity": ("Yes: " + ", ".join(race)) if race else "No: race and ethnicity are not inputs",
        "development_data": "; ".join(str(x) for x in (data.get("source"), data.get("period"),
                                                       f"{data.get('rows')} rows, {data.get('events')} events") if x),
        "validation": validation,
        "external_validation": [],
        "fairness_assessment": ("Out-of-fold performance by subgroup: " + fairness) if fairness else "No subgroup figures in the model card",
        "known_limitations": limitations,
        "update_schedule": f"Not retrained on a schedule: a new version is a new artifact (`{card.get('reproduce')}` "
                           "rebuilds this one); check local performance with `cds-service population validate`.",
    }


TRIPOD = {
    "1": "title: model, outcome and population",
    "4a/5a": "source of data and study period",
    "5b": "eligibility criteria",
    "6a": "outcome definition",
    "7a": "predictors, their units and expected directions of effect",
    "8": "sample size: rows, events and events per parameter",
    "9": "missing data handling",
    "10a/10b": "model type, predictor handling, pre-specified candidates and selection rule",
    "10d/12": "performance measures and internal validation: repeated stratified CV (primary), single split (secondary)",
    "13a": "participants: counts per split",
    "15a": "full model specification: artifact files (weights, normalisation, calibration)",
    "16": "performance with confidence intervals; comparison with the logistic baseline",
    "18": "limitations",
    "19b/20": "intended use and implications",
}


def build_card(spec, version: str, config: dict, metrics: dict, training: dict, normalisation: dict) -> tuple[dict, str]:
    """Return (card as JSON-ready dict, card as markdown); every number comes from `metrics`/`training`."""
    card = {
        "model": {"id": spec.model_id, "version": version, "title": spec.title, "architecture": config["net"],
                  "selected": metrics["selected"], "explanation": config["explanation"]},
        "intended_use": spec.intended_use,
        "why_this_model": spec.rationale,
        "population": spec.population,
        "eligibility": spec.eligibility,
        "outcome": spec.outcome,
        "data": {"source": spec.data_source, "period": spec.data_period, "licence": spec.data_licence,
                 "rows": training["rows"], "events": training["events"],
                 "fingerprint_sha256": training["fingerprint_sha256"]},
        "predictors": [{"name": f.name, "label": f.label, "unit": f.unit, "dataset_column": f.column, "fhir": f.fhir,
                        "training_range": [normalisation[f.name]["min"], normalisation[f.name]["max"]],
                        "training_mean": normalisation[f.name]["mean"], "expected_direction": f.direction,
                        "direction_source": f.direction_source} for f in spec.features],
        "missing_data": _missing_data(training.get("dataset")),
        "development": {"protocol": metrics["protocol"], "selection": metrics["selection"],
                        "selection_reason": metrics["selection_reason"], "candidates": metrics["candidates"],
                        "comparisons": metrics["comparisons"], "calibration": metrics["calibration"],
                        "events_per_parameter": metrics["events_per_parameter"], "seed": training["seed"],
                        "final_fit": training["final_fit"], "directions": metrics["directions"]},
        "performance": {"cv": metrics["cv"], "single_split": metrics["single_split"], "split": metrics["split"],
                        "subgroups": metrics["subgroups"]},
        "limitations": list(spec.limitations),
        "citation": spec.citation,
        "reproduce": _reproduce(spec, version, training.get("dataset")),
        "tripod_items": TRIPOD,
    }
    if "dataset" in training:
        card["data"]["built_from_fhir"] = _from_fhir(training["dataset"])
        card["training_serving_parity"] = metrics["parity"]
    return card, _markdown(card)


def _missing_data(dataset: dict | None) -> str:
    if dataset is None:
        return "complete cases in the source data; when serving, every input is required (no imputation)"
    return ("the rows the service gives a risk: every input is required and none is imputed, so a row whose input the "
            "service's feature code found not recorded, or recorded but rejected (outside the service file's plausible "
            "range, unit not convertible), is left out, as the service would give that patient no risk; rows outside the "
            "service's population or without an outcome label are left out too (counts under Data)")


def _from_fhir(dataset: dict) -> dict:
    """What built the training table: the export, the service's feature code and its definitions, the outcome."""
    p = dataset["provenance"]
    return {"export_sha256": p.get("export", {}).get("sha256"), "ndjson_files": p.get("export", {}).get("ndjson_files"),
            "service": p.get("service", {}).get("id"), "service_file": p.get("service", {}).get("file"),
            "data_definitions_sha256": p.get("service", {}).get("data_definitions_sha256"),
            "outcome": p.get("outcome", {}).get("id"), "outcome_sha256": p.get("outcome", {}).get("sha256"),
            "index": p.get("index"), "rows_read": dataset["rows_read"], "rows_used": dataset["rows_used"],
            "left_out": dataset["left_out"], "missing_inputs": dataset["missing_inputs"]}


def _reproduce(spec, version: str, dataset: dict | None) -> str:
    if dataset is None:
        return f"cds-service train {spec.model_id} --version {version}"
    service = dataset["provenance"].get("service", {}).get("id") or spec.service or "SERVICE"
    return (f"cds-service population from-dataset {spec.model_id} --output EXPORT && "
            f"cds-service population dataset --service {service} --input EXPORT --index-dates EXPORT/index_dates.csv "
            f"--outcome EXPORT/outcome.toml --output TABLE.parquet && "
            f"cds-service train {spec.model_id} --version {version} --data TABLE.parquet")


def _fmt(v, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _ci(m: dict, digits: int = 3) -> str:
    return f"{_fmt(m['mean'], digits)} ({_fmt(m['ci'][0], digits)}–{_fmt(m['ci'][1], digits)})"


def _perf_row(label: str, m: dict) -> str:
    ci = f"{_fmt(m['auroc_ci'][0])}–{_fmt(m['auroc_ci'][1])}" if m.get("auroc_ci") else "–"
    return (f"| {label} | {m['n']} | {m['events']} | {_fmt(m['auroc'])} | {ci} | {_fmt(m['brier'])} | "
            f"{_fmt(m['calibration_slope'], 2)} | {_fmt(m['calibration_intercept'], 2)} |")


_ARROW = {1: "raises risk", -1: "lowers risk", 0: "none declared"}


def _markdown(c: dict) -> str:
    m, perf, data, dev = c["model"], c["performance"], c["data"], c["development"]
    head = "| Group | n | Events | AUROC | 95% CI | Brier | Cal. slope | Cal. intercept |\n| --- | --- | --- | --- | --- | --- | --- | --- |"
    proto = dev["protocol"]
    lines = [
        f"# Model card: {m['title']} — `{m['id']}` {m['version']}", "",
        f"**Intended use.** {c['intended_use']}", "",
        f"**Why this model.** {c['why_this_model']}", "",
        f"**Population.** {c['population']}. Eligibility in the data: {c['eligibility']}.", "",
        f"**Outcome.** {c['outcome']}.", "",
        "## Data", "",
        f"- Source: {data['source']}.",
        f"- Period: {data['period']}.",
        f"- Licence: {data['licence']}.",
        f"- Rows: {data['rows']}, events: {data['events']} ({100 * data['events'] / data['rows']:.1f}%); "
        f"events per parameter of the shipped model: {dev['events_per_parameter']}.",
        f"- Training-table fingerprint (sha256): `{data['fingerprint_sha256']}`.",
        *_fhir_lines(data.get("built_from_fhir")),
        f"- Missing data: {c['missing_data']}.", "",
        "## Predictors and expected directions of effect", "",
        "| Feature | Unit | Dataset column | Source when serving | Training range | Expected effect (source) | Fitted |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p in c["predictors"]:
        d = dev["directions"][p["name"]]
        fitted = "held at 0 (fitted against the declared direction)" if d.get("constrained_to_zero") else f"{d['mean_logit_change']:+.3f} logit"
        lines.append(f"| {p['label']} (`{p['name']}`) | {p['unit'] or '0/1'} | `{p['dataset_column']}` | {p['fhir']} | "
                     f"{p['training_range'][0]:g}–{p['training_range'][1]:g} | {_ARROW[p['expected_direction']]} "
                     f"({p['direction_source']}) | {fitted} |")
    lines += ["", "*Fitted*: mean change of the logit when a 0/1 input goes from 0 to 1, or a measured input rises by one "
              "training SD, over every training row. A declared direction is checked on every row; the logistic model is "
              "constrained to it (an input fitted against it is held at 0).", ""]
    lines += [
        "## Development", "",
        f"- Protocol: repeated stratified {proto['cv_folds']}-fold cross-validation, {proto['cv_repeats']} repeats (seed {proto['seed']}); "
        f"inside every fold the whole procedure (fit, then recalibration on {proto['inner_folds']}-fold cross-fitted logits) is "
        "re-run, so no figure uses a row that fitted or recalibrated the model it judges.",
        f"- Selection: {dev['selection']}.",
        f"- Outcome of selection: **{m['selected']}** — {dev['selection_reason']}.",
        f"- Calibration: {dev['calibration']['method']} (slope a = {dev['calibration']['a']:.3f}, intercept b = {dev['calibration']['b']:.3f}).",
        f"- Final artifact: refitted on {dev['final_fit']} with the chosen settings.",
        f"- Explanations: {m['explanation']}.", "",
        "## Performance (primary: repeated cross-validation)", "",
        f"Mean over {proto['cv_folds'] * proto['cv_repeats']} held-out folds with 95% CIs ({proto['ci']}). "
        "Calibration slope: b in logit(y) = a + b·lp (ideal 1). Calibration intercept: calibration-in-the-large (ideal 0).", "",
        "| Metric | Shipped procedure (mean, 95% CI) |", "| --- | --- |",
        f"| AUROC | {_ci(perf['cv']['auroc'])} |",
        f"| Brier score | {_ci(perf['cv']['brier'])} |",
        f"| Calibration slope | {_ci(perf['cv']['calibration_slope'], 2)} |",
        f"| Calibration intercept | {_ci(perf['cv']['calibration_intercept'], 2)} |", "",
        "## Comparison with the logistic baseline (same folds)", "",
        "| Candidate | Parameters | Events per parameter | CV AUROC (95% CI) |", "| --- | --- | --- | --- |",
    ]
    lines += [f"| {x['name']} (L2 {x['l2']:g}) | {x['parameters']} | {x['events_per_parameter']} | {_ci(x['cv_uncalibrated']['auroc'])} |"
              for x in dev["candidates"]]
    lines += ["", "| Comparison | Mean AUROC difference (95% CI) | Folds better | One-sided p | Verdict |", "| --- | --- | --- | --- | --- |"]
    for x in dev["comparisons"]:
        d = x["auroc_difference"]
        lines.append(f"| {x['candidate']} − {x['versus']} | {d['mean']:+.3f} ({d['ci'][0]:+.3f} to {d['ci'][1]:+.3f}) | "
                     f"{x['folds_better']}/{d['folds']} | {d['p_one_sided']:.3f} (α {x['alpha']:.3f}) | "
                     f"{'beyond noise' if x['beyond_noise'] else 'not beyond noise'} |")
    split = ", ".join(f"{k} {v['n']} ({v['events']} events)" for k, v in perf["split"].items())
    lines += [
        "", "## Single split (secondary)", "",
        f"One stratified split ({split}); the procedure fitted on train + validation and judged on test, with a "
        "2000-resample bootstrap CI. One split of this size is noisy: the CV figures above are the ones to quote.", "",
        head, _perf_row(f"**{m['selected']}** (test split)", perf["single_split"]),
        "", "## Subgroups (out-of-fold predictions, first CV repeat)", "", head,
    ]
    for group, bands in perf["subgroups"].items():
        lines += [_perf_row(f"{group} {label}", s) for label, s in bands.items()]
    lines += ["", "Subgroups with fewer than 5 events or non-events get counts only."]
    lines += _parity_lines(c.get("training_serving_parity"))
    lines += ["", "## Limitations", ""]
    lines += [f"- {x}" for x in c["limitations"]]
    lines += ["", "## Reproduce", "", f"`{c['reproduce']}` rebuilds this artifact byte for byte (same data fingerprint, "
              "same torch and numpy) and prints these figures.", "", f"*Citation:* {c['citation']}.", "",
              "TRIPOD items covered: " + "; ".join(f"{k} {v}" for k, v in c["tripod_items"].items()) + "."]
    return "\n".join(lines) + "\n"


def _left_out(left_out: dict, missing_inputs: dict) -> str:
    if not left_out:
        return "none"
    parts = [f"{n} row{'s' if n != 1 else ''}, {why}" for why, n in left_out.items()]
    detail = "; ".join(f"`{name}` " + ", ".join(f"{how} in {n}" for how, n in counts.items()) for name, counts in missing_inputs.items())
    return "; ".join(parts) + (f" ({detail})" if detail else "")


def _fhir_lines(f: dict | None) -> list[str]:
    if not f:
        return []
    index = f["index"] or {}
    when = (f"index dates sha256 `{index['index_dates_sha256']}`" if index.get("index_dates_sha256")
            else f"index date {index.get('as_of')}")
    return [
        f"- Built from FHIR through the service's own feature code: the data written as a FHIR R4 Bulk Data export "
        f"({f['ndjson_files']} NDJSON files, sha256 `{f['export_sha256']}`), read by `{f['service']}` "
        f"(`{f['service_file']}`, data definitions sha256 `{f['data_definitions_sha256']}`) with `cds-service population dataset`; "
        f"outcome `{f['outcome']}` (sha256 `{f['outcome_sha256']}`), {when}.",
        f"- Rows: {f['rows_read']} in the table built from FHIR, {f['rows_used']} used; left out: {_left_out(f['left_out'], f['missing_inputs'])}.",
    ]


def _parity_lines(p: dict | None) -> list[str]:
    if not p:
        return []
    this, ref = p["cv"]["this_artifact"], p["cv"]["reference"]
    gap = p["risk_difference_on_reference_rows"]
    row = lambda label, f: (f"| {label} | {f['rows']} | {f['events']} | {f['selected']} | {_ci(f['auroc'])} | {_ci(f['brier'])} | "  # noqa: E731
                            f"{_ci(f['calibration_slope'], 2)} | {_ci(f['calibration_intercept'], 2)} |")
    return [
        "", "## Training–serving parity", "",
        "This artifact was trained on the table the service's own feature code built from the data as FHIR, so training "
        "and serving read every input through one code path. The same protocol run on the model's own table "
        f"(fingerprint `{p['reference_fingerprint_sha256']}`) is the reference:", "",
        "| Trained on | Rows | Events | Selected | CV AUROC | Brier | Cal. slope | Cal. intercept |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        row("the table built from FHIR (this artifact)", this),
        row("the model's own table (reference)", ref), "",
        f"The difference: rows left out of the table built from FHIR — {_left_out(p['left_out'], p['missing_inputs'])}. "
        f"On the reference table's {p['rows']['reference']} rows the two final models' predicted risks differ by at most "
        f"{100 * gap['max_abs']:.2f} percentage points (mean {100 * gap['mean_abs']:.2f}).",
    ]
