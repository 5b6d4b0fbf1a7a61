"""`/analytics`: accept and override rates and override reasons per client, service and model version.

For operators only (`ui/operator.py`: off without `analytics_token`, 404; 401 without the login).
Grouped per client; `?iss=<client>&tenant=<tenant>` shows one client's rows only. Free-text override
comments are counted, never shown. A second section reports the services run in shadow
mode (`storage/shadow_report.py`).
"""
from __future__ import annotations

from flask import Response, json, render_template, request

from cds_service.runtime import get_runtime
from cds_service.storage.analytics import feedback_report
from cds_service.storage.call_writes import settle
from cds_service.storage.shadow_report import shadow_report
from cds_service.ui.blueprint import bp
from cds_service.ui.operator import operator_refusal


@bp.get("/analytics")
def analytics():
    refused = operator_refusal(get_runtime().settings)
    if refused is not None:
        return refused
    # `?iss=…&tenant=…`: one client's rows only (tenant '' when left out), e.g. to hand an EHR its own report.
    client = (request.args["iss"], request.args.get("tenant", "")) if "iss" in request.args else None
    settle()  # the cards this process has issued are counted
    rows = feedback_report(get_runtime().engine, client=client)
    shadow = shadow_report(get_runtime().engine, client=client)  # services run in shadow mode ([alerts])
    if request.args.get("format") == "json":
        resp = Response(json.dumps({"report": rows, "shadow": shadow}), mimetype="application/json")
    else:
        resp = Response(render_template("analytics.html", rows=rows, client=client, shadow=shadow))
    resp.headers["Cache-Control"] = "no-store"
    return resp
