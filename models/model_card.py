"""Model card (JSON + markdown) written beside each artifact, following the TRIPOD items that apply
to a model developed and internally validated on one dataset (Collins et al., BMJ 2015;350:g7594).
"""
from __future__ import annotations

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
        "missing_data": "complete cases in the source data; when serving, every input is required (no imputation)",
        "development": {"protocol": metrics["protocol"], "selection": metrics["selection"],
                        "selection_reason": metrics["selection_reason"], "candidates": metrics["candidates"],
                        "comparisons": metrics["comparisons"], "calibration": metrics["calibration"],
                        "events_per_parameter": metrics["events_per_parameter"], "seed": training["seed"],
                        "final_fit": training["final_fit"], "directions": metrics["directions"]},
        "performance": {"cv": metrics["cv"], "single_split": metrics["single_split"], "split": metrics["split"],
                        "subgroups": metrics["subgroups"]},
        "limitations": list(spec.limitations),
        "citation": spec.citation,
        "reproduce": f"cds-service train {spec.model_id} --version {version}",
        "tripod_items": TRIPOD,
    }
    return card, _markdown(card)


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
    lines += ["", "Subgroups with fewer than 5 events or non-events get counts only.", "", "## Limitations", ""]
    lines += [f"- {x}" for x in c["limitations"]]
    lines += ["", "## Reproduce", "", f"`{c['reproduce']}` rebuilds this artifact byte for byte (same data fingerprint, "
              "same torch and numpy) and prints these figures.", "", f"*Citation:* {c['citation']}.", "",
              "TRIPOD items covered: " + "; ".join(f"{k} {v}" for k, v in c["tripod_items"].items()) + "."]
    return "\n".join(lines) + "\n"
