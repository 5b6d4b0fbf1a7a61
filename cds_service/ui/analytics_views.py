"""`/analytics`: accept and override rates and override reasons per client, service and model version.

For operators only: served when `analytics_token` is configured (off otherwise: 404), and only to a
request that presents it, as `Authorization: Bearer <token>` or as the password of an HTTP Basic
login `analytics_user` (so a browser asks for it). Grouped per client; `?iss=<client>&tenant=<tenant>` shows
one client's rows only. Free-text override comments are counted, never shown. A second section reports the
services run in shadow mode (`storage/shadow_report.py`).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from flask import Response, abort, json, render_template, request

from cds_service.runtime import get_runtime
from cds_service.storage.analytics import feedback_report
from cds_service.storage.shadow_report import shadow_report
from cds_service.ui.blueprint import bp


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


def operator_allowed(settings, header: str) -> bool:
    """Does this Authorization header carry the operator's token (Bearer, or Basic user:token)?"""
    scheme, _, value = header.partition(" ")
    presented = None
    if scheme.lower() == "bearer":
        presented = value.strip()
    elif scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        if hmac.compare_digest(_digest(user), _digest(settings.analytics_user)):
            presented = password
    return presented is not None and hmac.compare_digest(_digest(presented), _digest(settings.analytics_token))


@bp.get("/analytics")
def analytics():
    settings = get_runtime().settings
    if not settings.analytics_token:
        abort(404)
    if not operator_allowed(settings, request.headers.get("Authorization", "")):
        return Response("Operator login required.\n", status=401, mimetype="text/plain",
                        headers={"WWW-Authenticate": 'Basic realm="cds-hooks-ml analytics", charset="UTF-8"',
                                 "Cache-Control": "no-store"})
    # `?iss=…&tenant=…`: one client's rows only (tenant '' when left out), e.g. to hand an EHR its own report.
    client = (request.args["iss"], request.args.get("tenant", "")) if "iss" in request.args else None
    rows = feedback_report(get_runtime().engine, client=client)
    shadow = shadow_report(get_runtime().engine, client=client)  # services run in shadow mode ([alerts])
    if request.args.get("format") == "json":
        resp = Response(json.dumps({"report": rows, "shadow": shadow}), mimetype="application/json")
    else:
        resp = Response(render_template("analytics.html", rows=rows, client=client, shadow=shadow))
    resp.headers["Cache-Control"] = "no-store"
    return resp
