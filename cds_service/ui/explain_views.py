"""The explanation page of one card: `/explain/<token>` (the card's `absolute` link), and the same as JSON
at `/explain/<token>.json`. The token is a capability (`security/capability.py`): a genuine, unexpired
token opens its own client's record only, and both forms answer the same way.

Written so that a clinician can check the basis of the card independently (FDA, Clinical Decision
Support Software guidance, non-device criterion 4): each score in its own unit with its published
bands (a probability in %, a point score in points, eGFR in mL/min/1.73 m²); each input's part in it
on that same scale (percentage points or points, ordered, coloured by whether it moves the result
towards worse or better; the factors of a product equation such as eGFR), with the log-odds only in a
technical section; every input with value, unit, date and note; what would make a score that was not
calculated computable; the published source, validation figures and known limitations of every model
(`ModelInfo.evidence`, or a trained artifact's model card and out-of-fold calibration bins with their
95% intervals); and the decision-support source attributes (`models.model_card.source_attributes`).
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from flask import jsonify, make_response, render_template, url_for

from cds_service import charts
from cds_service.builders.base import number
from cds_service.http.call_state import call_state
from cds_service.runtime import get_runtime
from cds_service.storage import explanations as explain_store
from cds_service.storage.call_writes import settle
from cds_service.ui import safe_markdown
from cds_service.ui.blueprint import bp
from fhir_adapters.units import unit_text
from models.model_card import source_attributes
from models.protocol import ModelInfo
from models.registry import EQUATIONS
from models.score_scale import POINTS, PROBABILITY, Band, score_terms

_ARTIFACT = re.compile(r"^[a-z0-9][a-z0-9_-]*/[0-9A-Za-z][0-9A-Za-z._+-]*$")


def _open(token: str) -> tuple[dict | None, Any]:
    """The record a genuine token opens (None for a forged, altered, expired or purged one) and the settings."""
    rt = get_runtime()
    grant = rt.link_signer.verify(token) if rt.link_signer is not None else None  # set whenever the pages are on
    record = None
    if grant is not None:
        settle()  # the record of a call this process has just answered is committed
        record = explain_store.load(rt.engine, grant.client, grant.service_id, grant.hook_instance,
                                    rt.settings.ui_explain_ttl_s)
        # Who opened which card's explanation goes to the audit row of this request.
        state = call_state()
        state.service_id, state.hook_instance = grant.service_id, grant.hook_instance
    return record, rt.settings


@bp.get("/explain/<token>.json")
def explain_json(token: str):
    record, settings = _open(token)
    if record is None:
        return _private(make_response(jsonify({"error": "not found", "lifetime": lifetime(settings)}), 404))
    page = build_page(record, settings, charts_too=False)
    return _private(make_response(jsonify(page_json(page))))


@bp.get("/explain/<token>")
def explain(token: str):
    record, settings = _open(token)
    if record is None:  # one answer for all, naming nothing
        return _private(make_response(render_template("explain_missing.html", life=lifetime(settings)), 404))
    page = build_page(record, settings)
    return _private(make_response(render_template("explain.html", r=record, page=page,
                                                  json_url=url_for("ui.explain_json", token=token))))


def _private(resp):
    """The page holds patient data: no cache may keep it (the blueprint adds Referrer-Policy: no-referrer)."""
    resp.headers["Cache-Control"] = "no-store"
    return resp


def lifetime(settings) -> dict[str, float]:
    """How long a record is kept and how long a card's link opens it (`ui_explain_ttl_s`, `ui_explain_link_ttl_s`)."""
    return {"record_hours": settings.ui_explain_ttl_s / 3600,
            "link_hours": min(settings.ui_explain_ttl_s, settings.ui_explain_link_ttl_s) / 3600}


# ---- the page's content, as plain data (rendered by explain.html, or served as JSON) -----------------

def build_page(record: dict, settings, *, charts_too: bool = True) -> dict[str, Any]:
    features = {f["name"]: f for f in record["features"]}
    results = [_result(r, features, settings.model_dir, charts_too) for r in _results(record)]
    decided = record.get("decided_without_score")
    for res in results:  # the cards were decided without the scores: they are context, never the headline
        res["used"] = not decided
    created = record.get("created_at")
    return {
        "results": results,
        "decided_without_score": decided,
        "inputs": [dict(f, unit_text=unit_text(f.get("unit"))) for f in record["features"]],
        "required": sorted({n for r in results for n in r["model"]["required"]}),
        "lifetime": lifetime(settings),
        "expires": (datetime.fromtimestamp(created + settings.ui_explain_ttl_s, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
                    if created else None),
    }


def _results(record: dict) -> list[dict]:
    """The record's models; a record written before `results` existed had one model and one prediction."""
    if "results" in record:
        return record["results"]
    if not record.get("model"):
        return []
    return [{"role": "primary", "model": dict(record["model"], inputs=record.get("model_inputs", []),
                                              required=record.get("required", [])),
             "prediction": record.get("prediction"), "needs": []}]


def _info(model: dict) -> ModelInfo | None:
    """The live ModelInfo of a published equation (its evidence is read here, never copied into records)."""
    equation = EQUATIONS.get(model["id"])
    return equation.info if equation is not None else None


def _result(r: dict, features: dict, model_dir: str, charts_too: bool) -> dict[str, Any]:
    m, p = r["model"], r.get("prediction")
    scale, unit = m.get("scale", PROBABILITY), m.get("unit", "")
    bands = [Band(b["low"], b["high"], b["label"]) for b in m.get("bands", [])]
    info = _info(m)
    out: dict[str, Any] = {"role": r["role"], "model": m, "anchor": re.sub(r"[^a-z0-9-]", "-", m["id"]),
                           "short": m["title"].split(" (")[0], "measure": _measure(m["title"]),"needs": r.get("needs", []), "calculated": p is not None,
                           "bands": [{"text": b.label, "current": p is not None and b.holds(p["score"])} for b in bands],
                           "evidence": info.evidence.to_json() if info is not None and info.evidence is not None else None,
                           "evidence_version": info.version if info is not None else None}
    artifact = ((p or {}).get("details") or {}).get("artifact")
    card = model_card(model_dir, p) if artifact else None
    out["model_card"] = card
    inputs = [features[n] for n in m.get("inputs", []) if n in features]
    live = info or ModelInfo(m["id"], m["version"], m["title"], m["population"], m["outcome"], m["citation"],
                             tuple(m.get("inputs", [])), tuple(m.get("required", [])))
    out["source_attributes"] = source_attributes(live, inputs, card=(card or {}).get("json"))
    if p is None:
        return out
    lower_bound = p.get("details", {}).get("complete") is False
    out["score"] = p["score"]
    out["score_text"] = score_text(p["score"], scale, unit, lower_bound=lower_bound)
    out["not_assessed"] = [m.get("labels", {}).get(k, k) for k in p.get("details", {}).get("not_assessed", [])]
    out.update(_terms(m, p, features, scale, unit, charts_too))
    return out


def _measure(title: str) -> str:
    """What a quantity measures, from the model's title: 'eGFR', 'creatinine clearance'."""
    name = title.split(" by ")[0].split(" (")[0]
    return name if name[1:2].isupper() else name[:1].lower() + name[1:]


def score_text(value: float, scale: str, unit: str = "", *, lower_bound: bool = False) -> str:
    """A score in its own unit: '12.3%', '5 points' ('≥5 points' when items were not assessed), '24 mL/min/1.73 m²'."""
    if scale == PROBABILITY:
        return f"{100 * value:.1f}%"
    if scale == POINTS:
        return f"{'≥' if lower_bound else ''}{value:.0f} point{'' if value == 1 else 's'}"
    return f"{number(value, 1)} {unit_text(unit)}".strip()


def _terms(m: dict, p: dict, features: dict, scale: str, unit: str, charts_too: bool) -> dict[str, Any]:
    """Each contribution on the score's scale, ordered, as table rows and (but for factors) a chart."""
    terms = score_terms(m.get("link", "logit"), p["score"], p["linear_predictor"], p["baseline"], p["contributions"])
    higher_is_better = m.get("higher_is_better", False)
    not_assessed = set(p.get("details", {}).get("not_assessed", []))
    rows = []
    for key, change in terms.changes:
        f = features.get(key)
        label = m.get("labels", {}).get(key) or (f["label"] if f else key)
        value = f["display"] if f else ""
        if terms.kind == "factor":
            # A factor of a product equation says nothing alone about better or worse (Cockcroft-Gault
            # multiplies by 140 - age): the page states the equation's direction once instead.
            text, worse, direction = f"× {change:.4g}", None, ""
        else:
            moves = 0 if abs(change) < 5e-5 else (1 if change > 0 else -1)
            text = f"{100 * change:+.1f} pp" if scale == PROBABILITY else f"{change:+g} point{'' if abs(change) == 1 else 's'}"
            worse = None if moves == 0 else (moves > 0) != higher_is_better
            direction = "not assessed (scored 0)" if key in not_assessed else _direction(moves, worse, scale)
        rows.append({"key": key, "label": label, "value": value, "change": change, "text": text, "worse": worse,
                     "direction": direction, "log_scale": p["contributions"][key]})
    out: dict[str, Any] = {"terms_kind": terms.kind, "terms": rows, "reference": terms.reference,
                           "reference_text": _reference_text(terms, scale, unit), "reference_profile": _profile(p),
                           "linear_predictor": p["linear_predictor"], "baseline": p["baseline"], "link": m.get("link", "logit")}
    if charts_too and terms.kind == "difference" and rows:
        axis = ("change in risk, percentage points" if scale == PROBABILITY else "points")
        items = [(f"{row['label']}" + (f" ({row['value']})" if row["value"] else ""),
                  100 * row["change"] if scale == PROBABILITY else row["change"], row["text"], row["worse"]) for row in rows]
        out["chart"] = charts.contributions_chart(items, f"What drove the {m['title'].split(' (')[0]}", axis)
    return out


def _direction(moves: int, worse: bool | None, scale: str) -> str:
    if moves == 0:
        return "no effect"
    what = "risk" if scale == PROBABILITY else "score"
    return f"{'raises' if moves > 0 else 'lowers'} the {what} ({'worse' if worse else 'better'})"


def _reference_text(terms, scale: str, unit: str) -> str:
    if terms.kind == "factor":
        inverse = 1 / terms.reference if terms.reference else 0
        return f"{terms.reference:.4g}" + (f" (1/{inverse:.0f})" if inverse > 2 and abs(inverse - round(inverse)) < 1e-6 else "")
    return score_text(terms.reference, scale, unit)


def _profile(p: dict) -> str:
    ref = (p.get("details") or {}).get("reference")
    if isinstance(ref, str):
        return ref
    if isinstance(ref, dict):
        return "the training-set mean of every input"
    return ""


def page_json(page: dict) -> dict[str, Any]:
    """The page as JSON: the same numbers and words, without the SVG."""
    keep = ("role", "short", "needs", "calculated", "used", "bands", "score", "score_text", "not_assessed", "terms_kind",
            "reference", "reference_text", "reference_profile", "linear_predictor", "baseline", "link", "evidence",
            "source_attributes")
    results = []
    for r in page["results"]:
        item = {k: r[k] for k in keep if k in r}
        item["model"] = {k: r["model"][k] for k in ("id", "version", "title", "outcome", "scale", "unit") if k in r["model"]}
        item["terms"] = [{k: t[k] for k in ("key", "label", "value", "change", "text", "direction", "log_scale")}
                         for t in r.get("terms", [])]
        if r.get("model_card"):
            item["calibration_bins"] = r["model_card"].get("bins", [])
        results.append(item)
    inputs = [{k: f.get(k) for k in ("name", "label", "value", "display", "date", "note", "missing", "imputed")}
              | {"unit": f["unit_text"]} for f in page["inputs"]]
    return {"results": results, "decided_without_score": page.get("decided_without_score"), "inputs": inputs,
            "lifetime": page["lifetime"], "expires": page["expires"]}


# ---- trained artifacts: the model card beside the weights ---------------------------------------------

def model_card(model_dir: str, prediction: dict | None) -> dict | None:
    """The artifact's model card (markdown and JSON) and calibration chart, when the prediction came from a
    trained artifact."""
    name = ((prediction or {}).get("details") or {}).get("artifact")
    if not isinstance(name, str) or not _ARTIFACT.match(name) or ".." in name:
        return None
    directory = Path(model_dir) / name
    out: dict = {"artifact": name}
    md = directory / "model_card.md"
    if md.is_file():
        out["html"] = safe_markdown.render(unit_columns(md.read_text(encoding="utf-8")))
    card_json = _read_json(directory / "model_card.json")
    if card_json:
        out["json"] = card_json
        out["predictors"] = predictor_rows(card_json)
    metrics = _read_json(directory / "metrics.json")
    if metrics:
        test = metrics.get("test") or {}
        bins = calibration_bins(metrics)
        slope, intercept = test.get("calibration_slope"), test.get("calibration_intercept")
        if bins or (slope is not None and intercept is not None):
            out["calibration"] = charts.calibration_chart(bins, slope, intercept, "Calibration, out-of-fold predictions")
        out["bins"] = [{"predicted": b[0], "observed": b[1], "n": b[2], "ci": [b[3], b[4]]} for b in bins]
        out["test"] = test
    return out if len(out) > 1 else None


def unit_columns(md: str) -> str:
    """The model card's Markdown with every table's "Unit" column as a clinician reads it (`unit_text`: 'years', not
    'a'; 'mm Hg', not 'mm[Hg]'; 'yes / no' for a 0/1 flag). Training writes the card in UCUM and the artifact keeps it
    byte for byte (its sha256 is in the manifest, and `cds-service train` reproduces it), so its units become display
    text here, on the page, like every other unit. A row whose cells do not line up with its header is left as is."""
    out, col, width = [], -1, 0
    for line in md.splitlines():
        if not line.startswith("|"):
            col, width = -1, 0
        elif not width:  # a table's header
            names = [c.strip() for c in line.strip("|").split("|")]
            col, width = (names.index("Unit") if "Unit" in names else -1), len(names)
        else:
            cells = line.strip("|").split("|")
            raw = cells[col].strip() if col >= 0 and len(cells) == width else ""
            if raw and not set(raw) <= set("-: "):  # a value, not the header's separator row
                cells[col] = f" {'yes / no' if raw == '0/1' else unit_text(raw) or '–'} "
                line = "|" + "|".join(cells) + "|"
        out.append(line)
    return "\n".join(out) + ("\n" if md.endswith("\n") else "")


def predictor_rows(card_json: dict) -> list[dict[str, str]]:
    """The model card's predictors as a clinician reads them: human units (`unit_text`), flags as yes/no with the
    share of training patients for whom it was yes, ranges in the unit ('30–104 years', not '0–1' or 'a')."""
    rows = []
    for p in card_json.get("predictors") or ():
        lo, hi = (p.get("training_range") or (None, None))[:2]
        flag = not p.get("unit") and lo == 0 and hi == 1
        unit = "yes / no" if flag else unit_text(p.get("unit"))
        if flag:
            mean = p.get("training_mean")
            seen = f"yes in {number(100 * mean, 0)} % of the training patients" if isinstance(mean, (int, float)) else "no or yes"
        elif lo is not None and hi is not None:
            seen = f"{number(lo)}–{number(hi)} {unit}".strip()
        else:
            seen = "–"
        rows.append({"label": str(p.get("label") or p.get("name") or ""), "unit": unit, "seen": seen})
    return rows


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except ValueError:
        data = {}
    return data if isinstance(data, dict) else {}


def calibration_bins(metrics: dict) -> list[tuple[float, float, int | None, float | None, float | None]]:
    """Binned calibration points from metrics.json, under `test.calibration_bins` or `calibration_bins`:
    (predicted, observed, n, 95% low, 95% high). The interval is the bin's own when given (`ci`), else a
    Wilson interval from n and the observed rate."""
    from cds_service.population.metrics import wilson  # numpy: only when a trained model's page is drawn

    raw = (metrics.get("test") or {}).get("calibration_bins") or metrics.get("calibration_bins") or []
    out = []
    for b in raw if isinstance(raw, list) else []:
        if not isinstance(b, dict):
            continue
        pred = next((b[k] for k in ("predicted", "mean_predicted") if isinstance(b.get(k), (int, float))), None)
        obs = next((b[k] for k in ("observed", "observed_rate") if isinstance(b.get(k), (int, float))), None)
        if pred is None or obs is None:
            continue
        n = b.get("n") if isinstance(b.get("n"), int) else None
        low: float | None
        high: float | None
        ci = b.get("ci")
        if isinstance(ci, list) and len(ci) == 2 and all(isinstance(v, (int, float)) for v in ci):
            low, high = float(ci[0]), float(ci[1])
        elif n:
            low, high = wilson(round(obs * n), n)
        else:
            low = high = None
        out.append((float(pred), float(obs), n, low, high))
    return out
