"""The explanation page of one card: `/explain/<token>` (the card's `absolute` link; the token is a
capability, `security/capability.py`: a genuine, unexpired token opens its own client's record only).

It shows the score, a chart of the contributions, every input with value, unit, date and note,
what was missing or unavailable, and the model card: for a trained artifact its `model_card.md`
and a calibration plot from its `metrics.json`; for a published equation its ModelInfo
(population, outcome, citation).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from flask import make_response, render_template

from cds_service.http.call_state import call_state
from cds_service.runtime import get_runtime
from cds_service.storage import explanations as explain_store
from cds_service.storage.call_writes import settle
from cds_service import charts
from cds_service.ui import safe_markdown
from cds_service.ui.blueprint import bp

_ARTIFACT = re.compile(r"^[a-z0-9][a-z0-9_-]*/[0-9A-Za-z][0-9A-Za-z._+-]*$")


@bp.get("/explain/<token>")
def explain(token: str):
    rt = get_runtime()
    grant = rt.link_signer.verify(token)
    record = None
    if grant is not None:
        settle()  # the record of a call this process has just answered is committed
        record = explain_store.load(rt.engine, grant.client, grant.service_id, grant.hook_instance,
                                    rt.settings.ui_explain_ttl_s)
        # Who opened which card's explanation goes to the audit row of this request.
        state = call_state()
        state.service_id, state.hook_instance = grant.service_id, grant.hook_instance
    if record is None:  # a forged, altered, expired or purged link: one answer for all, naming nothing
        hours = min(rt.settings.ui_explain_ttl_s, rt.settings.ui_explain_link_ttl_s) / 3600
        return _private(make_response(render_template("explain_missing.html", hours=hours), 404))
    p = record.get("prediction")
    labels = {f["name"]: f for f in record["features"]}
    chart = None
    if p and p.get("contributions"):
        items = [(f"{labels[n]['label']} ({labels[n]['display']})" if n in labels else n, v)
                 for n, v in p["contributions"].items()]
        chart = charts.contributions_chart(items, "Contribution of each input to this patient's score")
    card = model_card(rt.settings.model_dir, p)
    return _private(make_response(render_template("explain.html", r=record, p=p, chart=chart, card=card,
                                                  inputs=[f for f in record["features"]],
                                                  contribution_sum=sum(p["contributions"].values()) if p else None)))


def _private(resp):
    """The page holds patient data: no cache may keep it (the blueprint adds Referrer-Policy: no-referrer)."""
    resp.headers["Cache-Control"] = "no-store"
    return resp


def model_card(model_dir: str, prediction: dict | None) -> dict | None:
    """The artifact's model card and calibration chart, when the prediction came from a trained artifact."""
    name = ((prediction or {}).get("details") or {}).get("artifact")
    if not isinstance(name, str) or not _ARTIFACT.match(name) or ".." in name:
        return None
    directory = Path(model_dir) / name
    out: dict = {"artifact": name}
    md = directory / "model_card.md"
    if md.is_file():
        out["html"] = safe_markdown.render(md.read_text(encoding="utf-8"))
    metrics_file = directory / "metrics.json"
    if metrics_file.is_file():
        try:
            metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
        except ValueError:
            metrics = {}
        test = metrics.get("test") or {}
        bins = calibration_bins(metrics)
        slope, intercept = test.get("calibration_slope"), test.get("calibration_intercept")
        if bins or (slope is not None and intercept is not None):
            out["calibration"] = charts.calibration_chart(bins, slope, intercept)
        out["test"] = test
    return out if len(out) > 1 else None


def calibration_bins(metrics: dict) -> list[tuple[float, float, int | None]]:
    """Binned calibration points from metrics.json, under `test.calibration_bins` or `calibration_bins`:
    a list of {predicted|mean_predicted, observed|observed_rate, n} objects."""
    raw = (metrics.get("test") or {}).get("calibration_bins") or metrics.get("calibration_bins") or []
    out = []
    for b in raw if isinstance(raw, list) else []:
        if not isinstance(b, dict):
            continue
        pred = next((b[k] for k in ("predicted", "mean_predicted") if isinstance(b.get(k), (int, float))), None)
        obs = next((b[k] for k in ("observed", "observed_rate") if isinstance(b.get(k), (int, float))), None)
        if pred is not None and obs is not None:
            n = b.get("n")
            out.append((float(pred), float(obs), int(n) if isinstance(n, int) else None))
    return out
