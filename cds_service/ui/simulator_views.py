"""The EHR simulator: pick a synthetic patient, fire a hook, see the cards as an EHR shows them.

The browser does what an EHR's CDS client does. It asks this backend for the signed requests
(`/simulator/api/calls`: context, prefetch, and an ES384 JWT per service), sends each one to the
service's real endpoint with `Authorization: Bearer …`, has the cards rendered
(`/simulator/api/cards`), and sends real feedback (FEEDBACK-2) with a token from `/simulator/api/token`.
"""
from __future__ import annotations

import json
import re

from flask import Response, abort, redirect, render_template, request, url_for

from cds_service.ehr.contexts import APPOINTMENT_LEAD, build_context, now_utc
from cds_service.ehr.drafts import DRAFT_ORDERS, DRAFTS_BY_KEY
from cds_service.ehr.hook_calls import build_call
from cds_service.errors import InvalidRequest
from cds_service.runtime import base_url, get_runtime
from cds_service.ui import safe_markdown
from cds_service.ui.blueprint import bp, ui_state
from hooks.catalog import HOOKS

_FEEDBACK_PATH = re.compile(r"^/cds-services/([a-z0-9][a-z0-9\-]{1,62})/feedback$")
# What each hook's button does, in words an integrator recognises.
HOOK_HELP = {
    "patient-view": "open the patient's chart",
    "order-select": "select the picked draft orders",
    "order-sign": "sign the picked draft orders",
    "appointment-book": f"book a follow-up visit in {APPOINTMENT_LEAD.days} days",
    "encounter-start": "start the patient's current encounter",
    "encounter-discharge": "discharge the patient from the current encounter",
}


def require_simulator() -> None:
    if not get_runtime().settings.ui_simulator:
        abort(404)


def json_response(body, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.", expression="$")
    return body


def _hooks() -> list[tuple[str, list]]:
    """The hooks loaded services answer, in the catalog's order, each with its services."""
    services = get_runtime().all_services()
    return [(h, [b for b in services if b.definition.hook == h]) for h in HOOKS
            if any(b.definition.hook == h for b in services)]


@bp.get("/")
def home():
    if get_runtime().settings.ui_simulator:
        return redirect(url_for("ui.simulator"))
    return redirect(url_for("ui.analytics"))


@bp.get("/simulator")
def simulator():
    require_simulator()
    state, hooks = ui_state(), _hooks()
    has_orders = any(h in ("order-select", "order-sign") for h, _ in hooks)
    return render_template("simulator.html", summaries=state.patients.summaries, hooks=hooks, hook_help=HOOK_HELP,
                           drafts=DRAFT_ORDERS, has_orders=has_orders, generator=state.patients.generator)


@bp.get("/simulator/.well-known/jwks.json")
def simulator_jwks():
    """The simulator's public JWK Set (the `jku` of its tokens, SEC-7)."""
    require_simulator()
    return json_response(ui_state().demo_key.jwks)


@bp.post("/simulator/api/calls")
def simulator_calls():
    """The signed requests for one hook: one per loaded service that answers it."""
    require_simulator()
    state, body = ui_state(), json_body()
    pid, hook = body.get("patient"), body.get("hook")
    if not isinstance(pid, str) or pid not in state.patients:
        raise InvalidRequest("Unknown patient.", expression="patient")
    bound = [b for h, group in _hooks() if h == hook for b in group]
    if not bound or not isinstance(hook, str):
        raise InvalidRequest(f"No loaded service answers '{hook}'.", expression="hook")
    drafts, selected = _picked(body, "drafts"), _picked(body, "selected")
    if "draftOrders" in HOOKS[hook].required and (not drafts or None in drafts):
        raise InvalidRequest("Pick at least one draft order from the list.", expression="drafts")
    patient = state.patients.patient(pid)
    context = build_context(hook, patient, now=now_utc(), drafts=[d for d in drafts if d],
                            selected=[d.id for d in selected if d])
    base = base_url()
    sign = state.demo_key.signer(base)
    calls = []
    for b in bound:
        call = build_call(b, patient.resources, context)
        path = f"/cds-services/{b.definition.id}"
        # `url` is relative to the page, so the simulator also works behind a path prefix.
        calls.append({"service_id": call.service_id, "title": call.title, "hook": call.hook, "url": path.lstrip("/"),
                      "aud": base + path, "token": sign(base + path), "request": call.body, "notes": call.notes})
    return json_response({"calls": calls})


def _picked(body: dict, name: str) -> list:
    """The draft orders named in body[name] (None for a name that is not on the picker)."""
    keys = body.get(name)
    keys = keys if isinstance(keys, list) else []
    return [DRAFTS_BY_KEY.get(k) for k in keys if isinstance(k, str)]


@bp.post("/simulator/api/token")
def simulator_token():
    """A token for the feedback endpoint of one of our services (and nothing else)."""
    require_simulator()
    path = json_body().get("path")
    m = _FEEDBACK_PATH.match(path) if isinstance(path, str) else None
    if not isinstance(path, str) or not m or m.group(1) not in get_runtime().services:
        raise InvalidRequest("path must be /cds-services/<id>/feedback of a loaded service.", expression="path")
    base = base_url()
    return json_response({"aud": base + path, "token": ui_state().demo_key.signer(base)(base + path)})


@bp.post("/simulator/api/cards")
def simulator_cards():
    """The service's response rendered as an EHR shows it (markdown made safe on the server)."""
    require_simulator()
    body = json_body()
    response = body.get("response")
    if not isinstance(response, dict) or not isinstance(response.get("cards"), list):
        raise InvalidRequest("response must be a CDS Hooks response with a cards array.", expression="response")
    cards = [c for c in response["cards"] if isinstance(c, dict)]
    html = render_template("_cards.html", cards=cards, service_id=str(body.get("service_id", "")),
                           markdown=safe_markdown.render)
    return json_response({"html": html, "count": len(cards)})
