"""The local validation report: metrics.json and a self-contained report.html (inline SVG plots, no scripts)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from jinja2 import Environment, PackageLoader, select_autoescape

from cds_service import charts
from cds_service.applicability import APPLIES, NOT_APPLICABLE, UNDECIDED
from cds_service.population.metrics import SUBGROUPS, validation_metrics
from cds_service.population.outcomes import Outcome

VALIDATION_COLUMNS = ("score", "outcome", "applicability", "error") + SUBGROUPS
SUBGROUP_TITLES = {"sex": "Sex", "race": "Race (OMB)", "ethnicity": "Ethnicity (OMB)", "age_band": "Age at the index date"}


def write_report(out_dir: Path, table, *, service: str, outcome: Outcome, bound, seed: int = 0) -> Path:
    """Compute the metrics from the scored rows (an Arrow table of VALIDATION_COLUMNS); write both files."""
    cols = {c: table.column(c).to_pylist() for c in VALIDATION_COLUMNS}
    n = len(cols["score"])
    evaluable = [i for i in range(n) if cols["score"][i] is not None and cols["outcome"][i] is not None]
    flow = {
        "patients": n,
        "errors": sum(e is not None for e in cols["error"]),
        "not_applicable": sum(a == NOT_APPLICABLE for a in cols["applicability"]),
        "undecided": sum(a == UNDECIDED for a in cols["applicability"]),
        "not_scored_missing_inputs": sum(a == APPLIES and s is None for a, s in zip(cols["applicability"], cols["score"])),
        "scored_without_outcome_label": sum(s is not None and o is None for s, o in zip(cols["score"], cols["outcome"])),
        "evaluated": len(evaluable),
    }
    y = np.array([cols["outcome"][i] for i in evaluable], dtype=int)
    p = np.array([cols["score"][i] for i in evaluable], dtype=float)
    groups = {g: np.array([cols[g][i] for i in evaluable], dtype=object) for g in SUBGROUPS}
    model = bound.model.info
    metrics = {
        "service": service, "model": {"id": model.id, "version": model.version, "title": model.title,
                                      "outcome": model.outcome, "population": model.population},
        "outcome": {"id": outcome.id, "title": outcome.title, "window_days": outcome.window_days,
                    "codes": list(outcome.codes), "death": outcome.death, "require_follow_up": outcome.require_follow_up},
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "flow": flow,
        **validation_metrics(y, p, groups, seed=seed),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1), encoding="utf-8")
    path = out_dir / "report.html"
    path.write_text(render(metrics), encoding="utf-8")
    return path


def render(metrics: dict) -> str:
    cal = metrics["calibration"]
    plots = {
        "roc": charts.roc_chart(metrics["roc"], metrics["overall"].get("auroc"), "ROC curve"),
        "calibration": charts.calibration_chart([(b["predicted"], b["observed"], b["n"]) for b in cal["bins"]],
                                                cal.get("slope"), cal.get("intercept"),
                                                title="Calibration: observed against predicted risk"),
        "decision": charts.decision_curve_chart(metrics["decision_curve"], "Decision curve: net benefit"),
    }
    env = Environment(loader=PackageLoader("cds_service.population", "templates"), autoescape=select_autoescape())
    # Numbers a small group does not have (e.g. no calibration slope under 5 events) show as a dash.
    env.filters["pct"] = lambda v: f"{100 * v:.1f}%" if isinstance(v, (int, float)) else "–"
    env.filters["num"] = lambda v, d=3: f"{v:.{d}f}" if isinstance(v, (int, float)) else "–"
    return env.get_template("validation_report.html").render(m=metrics, plots=plots, titles=SUBGROUP_TITLES)
