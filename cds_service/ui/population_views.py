"""`/population`: the care-management worklist of a scored population (`cds-service population score`).

Sorted and filtered on the server (risk band, applicability, missing inputs, patient id, minimum risk),
one page of rows at a time, and exported as CSV with the same filters (`?format=csv`). It lists patients
with their risks: served only when `ui_population` names the scored file (off by default: 404), and then
only to the operator login of `/analytics` (`ui/operator.py`: Bearer or HTTP Basic; 401 without it).
"""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass

from flask import Response, abort, make_response, render_template, request

from cds_service.runtime import get_runtime
from cds_service.ui.blueprint import bp, ui_state
from cds_service.ui.operator import operator_refusal
from hooks.catalog import INDICATORS

PAGE_SIZE = 100
COLUMNS = ("patient_id", "as_of", "service_id", "applicability", "applicability_reasons", "score", "indicator",
           "summary", "missing", "top_factors", "model_id", "model_version", "error")
SORTS = {
    "score": lambda r: (r["score"] is None, -(r["score"] or 0.0)),
    "band": lambda r: (-_band_rank(r["indicator"]), r["score"] is None, -(r["score"] or 0.0)),
    "patient": lambda r: r["patient_id"],
}


@dataclass(frozen=True)
class Filters:
    band: str = "all"  # critical / warning / info / none / all
    applicability: str = "applies"  # applies / not-applicable / undecided / all (cds_service.applicability)
    missing: str = "all"  # complete / incomplete / all
    q: str = ""
    min_risk: float | None = None  # percent
    sort: str = "score"

    @classmethod
    def from_args(cls, args) -> "Filters":
        try:
            min_risk = float(args["min_risk"]) if args.get("min_risk") else None
        except ValueError:
            min_risk = None
        sort = args.get("sort", "score")
        return cls(args.get("band", "all"), args.get("applicability", "applies"), args.get("missing", "all"),
                   args.get("q", "").strip()[:64], min_risk, sort if sort in SORTS else "score")

    def keep(self, r: dict) -> bool:
        if self.band != "all" and (r["indicator"] or "none") != self.band:
            return False
        if self.applicability != "all" and r["applicability"] != self.applicability:
            return False
        if self.missing != "all" and bool(r["missing"]) != (self.missing == "incomplete"):
            return False
        if self.q and self.q.lower() not in r["patient_id"].lower():
            return False
        return self.min_risk is None or (r["score"] is not None and 100 * r["score"] >= self.min_risk)


def _band_rank(indicator: str | None) -> int:
    return INDICATORS.index(indicator) + 1 if indicator in INDICATORS else 0


def scored_rows(path: str) -> list[dict] | None:
    """The scored file's rows (only the worklist's columns), re-read when the file changes; None when absent."""
    if not os.path.exists(path):
        return None
    import pyarrow.parquet as pq

    stamp = max((e.stat().st_mtime for e in os.scandir(path)), default=0) if os.path.isdir(path) else os.stat(path).st_mtime
    state = ui_state()
    if state.worklist is None or state.worklist[:2] != (path, stamp):
        table = pq.read_table(path, columns=list(COLUMNS))
        state.worklist = (path, stamp, table.to_pylist())
    return state.worklist[2]


@bp.get("/population")
def population():
    settings = get_runtime().settings
    if not settings.ui_population:
        abort(404)
    refused = operator_refusal(settings)
    if refused is not None:
        return refused
    resp = _worklist(settings.ui_population)
    resp.headers["Cache-Control"] = "no-store"  # patient data
    return resp


def _worklist(path: str) -> Response:
    rows = scored_rows(path)
    if rows is None:
        return make_response(render_template("population.html", missing_file=path, rows=[], total=0, f=Filters()), 404)
    f = Filters.from_args(request.args)
    chosen = sorted((r for r in rows if f.keep(r)), key=SORTS[f.sort])
    if request.args.get("format") == "csv":
        return _csv(chosen)
    try:
        page = max(1, int(request.args.get("page", 1)))
    except ValueError:
        page = 1
    pages = max(1, -(-len(chosen) // PAGE_SIZE))
    page = min(page, pages)
    bands = {b: sum(1 for r in rows if (r["indicator"] or "none") == b) for b in (*reversed(INDICATORS), "none")}
    return make_response(render_template("population.html", rows=chosen[(page - 1) * PAGE_SIZE: page * PAGE_SIZE],
                                         total=len(chosen), everyone=len(rows), bands=bands, f=f, page=page, pages=pages,
                                         path=path, args={k: v for k, v in request.args.items() if k != "page"}))


def _csv(rows: list[dict]) -> Response:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["patient_id", "risk", "band", "applicability", "why", "top_factors", "missing_inputs", "as_of",
                "service", "model", "model_version", "error"])
    for r in rows:
        factors = "; ".join(f"{t['label']}: {t['value']} (+{t['contribution']:.2f})" for t in r["top_factors"] or ())
        w.writerow([r["patient_id"], "" if r["score"] is None else f"{r['score']:.4f}", r["indicator"] or "",
                    r["applicability"] or "", "; ".join(r["applicability_reasons"] or ()), factors,
                    " ".join(r["missing"] or ()), r["as_of"].isoformat() if r["as_of"] else "", r["service_id"],
                    r["model_id"] or "", r["model_version"] or "", r["error"] or ""])
    return Response(buf.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=population-worklist.csv"})
