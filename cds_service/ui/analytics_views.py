"""`/analytics`: accept and override rates and override reasons per service and model version."""
from __future__ import annotations

from flask import Response, json, render_template, request

from cds_service.storage.analytics import feedback_report
from cds_service.runtime import get_runtime
from cds_service.ui.blueprint import bp


@bp.get("/analytics")
def analytics():
    rows = feedback_report(get_runtime().engine)
    if request.args.get("format") == "json":
        return Response(json.dumps({"report": rows}), mimetype="application/json")
    return render_template("analytics.html", rows=rows)
