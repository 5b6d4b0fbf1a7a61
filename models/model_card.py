"""Model card (JSON + markdown) written beside each artifact, following the TRIPOD items that apply
to a model developed and internally validated on one dataset (Collins et al., BMJ 2015;350:g7594).
"""
from __future__ import annotations

TRIPOD = {
    "1": "title: model, outcome and population",
    "4a/5a": "source of data and study period",
    "5b": "eligibility criteria",
    "6a": "outcome definition",
    "7a": "predictors and their units",
    "8": "sample size: rows and events",
    "9": "missing data handling",
    "10a/10b": "model type, predictor handling, selection and internal validation (split)",
    "10d": "performance measures: discrimination and calibration",
    "13a": "participants: counts per split",
    "15a": "full model specification: artifact files (weights, normalisation, calibration)",
    "16": "performance with confidence intervals",
    "18": "limitations",
    "19b/20": "intended use and implications",
}


def build_card(spec, version: str, config: dict, metrics: dict, training: dict, normalisation: dict) -> tuple[dict, str]:
    """Return (card as JSON-ready dict, card as markdown); every number comes from `metrics`/`training`."""
    card = {
        "model": {"id": spec.model_id, "version": version, "title": spec.title, "architecture": config["net"],
                  "selected": metrics["selected"], "explanation": config["explanation"]},
        "intended_use": spec.intended_use,
        "population": spec.population,
        "eligibility": spec.eligibility,
        "outcome": spec.outcome,
        "data": {"source": spec.data_source, "period": spec.data_period, "licence": spec.data_licence,
                 "rows": training["rows"], "events": training["events"],
                 "fingerprint_sha256": training["fingerprint_sha256"]},
        "predictors": [{"name": f.name, "label": f.label, "unit": f.unit, "dataset_column": f.column, "fhir": f.fhir,
                        "training_range": [normalisation[f.name]["min"], normalisation[f.name]["max"]],
                        "training_mean": normalisation[f.name]["mean"]} for f in spec.features],
        "missing_data": "complete cases in the source data; when serving, every input is required (no imputation)",
        "development": {"split": metrics["split"], "selection": metrics["selection"], "candidates": metrics["candidates"],
                        "calibration": metrics["calibration"], "seed": training["seed"]},
        "performance": {"test": metrics["test"], "test_before_recalibration": metrics["test_before_recalibration"],
                        "baseline_logistic": metrics["baseline_logistic"], "subgroups": metrics["subgroups"]},
        "limitations": list(spec.limitations),
        "citation": spec.citation,
        "reproduce": f"cds-service train {spec.model_id} --version {version}",
        "tripod_items": TRIPOD,
    }
    return card, _markdown(card)


def _fmt(v, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _perf_row(label: str, m: dict) -> str:
    ci = f"{_fmt(m['auroc_ci'][0])}–{_fmt(m['auroc_ci'][1])}" if m.get("auroc_ci") else "–"
    return (f"| {label} | {m['n']} | {m['events']} | {_fmt(m['auroc'])} | {ci} | {_fmt(m['brier'])} | "
            f"{_fmt(m['calibration_slope'], 2)} | {_fmt(m['calibration_intercept'], 2)} |")


def _markdown(c: dict) -> str:
    m, perf, data = c["model"], c["performance"], c["data"]
    head = "| Group | n | Events | AUROC | 95% CI | Brier | Cal. slope | Cal. intercept |\n| --- | --- | --- | --- | --- | --- | --- | --- |"
    lines = [
        f"# Model card: {m['title']} — `{m['id']}` {m['version']}", "",
        f"**Intended use.** {c['intended_use']}", "",
        f"**Population.** {c['population']}. Eligibility in the data: {c['eligibility']}.", "",
        f"**Outcome.** {c['outcome']}.", "",
        "## Data", "",
        f"- Source: {data['source']}.",
        f"- Period: {data['period']}.",
        f"- Licence: {data['licence']}.",
        f"- Rows: {data['rows']}, events: {data['events']} ({100 * data['events'] / data['rows']:.1f}%).",
        f"- Training-table fingerprint (sha256): `{data['fingerprint_sha256']}`.",
        f"- Missing data: {c['missing_data']}.", "",
        "## Predictors", "",
        "| Feature | Unit | Dataset column | Source when serving | Training range | Training mean |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {p['label']} (`{p['name']}`) | {p['unit'] or '0/1'} | `{p['dataset_column']}` | {p['fhir']} | "
              f"{p['training_range'][0]:g}–{p['training_range'][1]:g} | {p['training_mean']:.2f} |" for p in c["predictors"]]
    lines += ["", "Inputs outside the training range are extrapolated by the model; the service files guard the "
              "population (and, where the effect is largest, the range) instead of clamping values."]
    dev = c["development"]
    split = ", ".join(f"{k} {v['n']} ({v['events']} events)" for k, v in dev["split"].items())
    lines += [
        "", "## Development", "",
        f"- Stratified split (seed {dev['seed']}): {split}.",
        "- Candidates (validation AUROC): " + ", ".join(f"{x['name']} {_fmt(x['validation']['auroc'])}" for x in dev["candidates"]) + ".",
        f"- Selection: {dev['selection']}. Selected: **{m['selected']}**.",
        f"- Calibration: {dev['calibration']['method']} (a = {dev['calibration']['a']:.3f}, b = {dev['calibration']['b']:.3f}).",
        f"- Explanations: {m['explanation']}.", "",
        "## Performance on the held-out test split", "",
        "Calibration slope: b in logit(y) = a + b·lp (ideal 1). Calibration intercept: calibration-in-the-large (ideal 0).", "",
        head,
        _perf_row(f"**{m['selected']} (served)**", perf["test"]),
        _perf_row("same, before recalibration", perf["test_before_recalibration"]),
        _perf_row("plain logistic regression (baseline)", perf["baseline_logistic"]),
        "", "## Subgroups (test split)", "", head,
    ]
    for group, bands in perf["subgroups"].items():
        lines += [_perf_row(f"{group} {label}", s) for label, s in bands.items()]
    lines += ["", "Subgroups with fewer than 5 events or non-events get counts only.", "", "## Limitations", ""]
    lines += [f"- {x}" for x in c["limitations"]]
    lines += ["", "## Reproduce", "", f"`{c['reproduce']}` rebuilds this artifact; with the same data fingerprint it "
              "reproduces these metrics.", "", f"*Citation:* {c['citation']}.", "",
              "TRIPOD items covered: " + "; ".join(f"{k} {v}" for k, v in c["tripod_items"].items()) + "."]
    return "\n".join(lines) + "\n"
