"""HTTP surface: discovery, service calls, feedback, health. Views stay thin (habit 8)."""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

import orjson
from flask import Blueprint, Response, current_app, request

from cds_service.errors import UnknownService
from cds_service.feedback_request import parse_feedback
from cds_service.hook_request import parse_hook_request
from cds_service.http.body import read_json_body
from cds_service.http.call_state import call_state
from cds_service.pipeline import BoundService, Timings, invoke
from cds_service.runtime import base_url, get_runtime
from cds_service.security.auth import authenticate
from cds_service.storage import db
from cds_service.storage.call_writes import ISSUED_WAIT_S, committer, queue_rows, settle
from cds_service.storage.feedback import store_feedback
from hooks.catalog import HOOKS

bp = Blueprint("cds", __name__)
log = logging.getLogger("cds_service.http.views")


def _json(body, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


def _find(service_id: str) -> list[BoundService]:
    group = get_runtime().services.get(service_id)
    if not group:
        raise UnknownService(f"No CDS service with id '{service_id}'.", expression="id")
    return group


def _body(rt):
    return read_json_body(rt.settings.max_body_bytes, rt.settings.max_json_depth)


@bp.get("/cds-services")
def discovery():
    rt = get_runtime()
    call_state().identity = authenticate(rt, request, [f"{base_url()}/cds-services"])
    # DISC-1/2: always 200 with a services array, built from the loaded definitions.
    return _json({"services": [b.definition.discovery() for b in rt.all_services()]})


@bp.post("/cds-services/<service_id>")
def call_service(service_id: str):
    rt, state = get_runtime(), call_state()
    group = _find(service_id)
    state.service_id = service_id
    state.identity = authenticate(rt, request, [f"{base_url()}/cds-services/{service_id}"])
    body = _body(rt)
    hook = body.get("hook") if isinstance(body, dict) else None
    bound = next((b for b in group if b.definition.hook == hook), group[0])  # DISC-5
    hook_request = parse_hook_request(body, _hook_spec(bound))
    state.hook, state.hook_instance, state.patient_id = hook_request.hook, hook_request.hook_instance, hook_request.patient_id
    state.timings = Timings()
    deadline = time.monotonic() + rt.settings.deadline_s
    fetcher = rt.fetcher_factory(hook_request, state.identity, deadline)
    # Cards link to the explanation page only when this app serves one: a capability token bound to
    # this client, service and hookInstance, with an expiry (security/capability.py).
    links_base, token = None, None
    if rt.link_signer is not None and "ui.explain" in current_app.view_functions:
        links_base = base_url()
        token = rt.link_signer.token(state.identity.client, service_id, hook_request.hook_instance)
    response, ctx = invoke(bound, hook_request, now=datetime.now(timezone.utc), fetcher=fetcher,
                           base_url=links_base, link_kinds=rt.settings.ui_explain_links, timings=state.timings,
                           explain_token=token)
    state.build_context = ctx
    model = _model_version(bound, ctx)
    # The service's `[alerts]`: repeats, snoozes and silent info cards held back; nothing in shadow mode.
    assert rt.card_history is not None  # the app factory sets it
    response, state.held_back = rt.card_history.screen(bound.definition, state.identity.client, hook_request, response, model)
    _record_cards(rt, bound, state.identity.client, hook_request.hook_instance, response, model)
    state.response_body = response.to_json()  # serialised once; the explanation hook reads the cards from it
    return _json(state.response_body)


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str):
    rt, state = get_runtime(), call_state()
    group = _find(service_id)
    state.service_id = service_id
    base = f"{base_url()}/cds-services/{service_id}"
    state.identity = authenticate(rt, request, [f"{base}/feedback", base])  # SEC-5 [OUR CHOICE]
    items = parse_feedback(_body(rt))
    settle()  # the cards this process issued are committed before they are looked up
    # Another worker's cards may still be queued for a moment (after-answer).
    wait_s = 0.0 if committer(current_app).wait else ISSUED_WAIT_S
    store_feedback(rt.engine, service_id, state.identity.client, items, wait_s=wait_s)
    # An override with one of the service's snooze reasons silences that card kind for the patient.
    assert rt.card_history is not None  # the app factory sets it
    rt.card_history.snooze(service_id, {b.definition.hook: b.definition.alerts for b in group}, state.identity.client, items)
    return Response(status=200)  # FEEDBACK-5: 200, no body


@bp.get("/healthz")
def healthz():
    return _json({"status": "ok"})


@bp.get("/readyz")
def readyz():
    rt = get_runtime()
    ok_db = db.ping(rt.engine)
    models = sorted({b.model.info.id for b in rt.all_services() if b.model is not None})
    body = {"status": "ok" if ok_db else "unavailable", "database": ok_db, "services": len(rt.all_services()), "models": models}
    return _json(body, 200 if ok_db else 503)


def _hook_spec(bound: BoundService):
    return HOOKS[bound.definition.hook]


def _model_version(bound: BoundService, ctx) -> tuple[str | None, str | None]:
    """The model (and version) behind the call's cards: the prediction's, else the service's model."""
    p = ctx.prediction
    if p is not None:
        return p.model, p.version
    return (bound.model.info.id, bound.model.info.version) if bound.model else (None, None)


def _record_cards(rt, bound: BoundService, client: tuple[str, str], hook_instance: str, response, model) -> None:
    """Remember which client got each card uuid from which model version (feedback is accepted only
    for these, and analytics count them); no patient data."""
    if not response.cards:
        return
    rows = [{"iss": client[0], "tenant": client[1], "card_uuid": c.uuid, "service_id": bound.definition.id, "hook_instance": hook_instance, "model": model[0],
             "model_version": model[1], "indicator": c.indicator, "issued_at": time.time()} for c in response.cards]
    queue_rows(db.insert_ignoring_statement(rt.engine.dialect.name, db.cards_issued), rows)  # with the call's other rows
