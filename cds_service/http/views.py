"""HTTP surface: discovery, service calls, feedback, health. Views stay thin (habit 8)."""
from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone

from flask import Blueprint, Response, current_app, g, request

from hooks.catalog import HOOKS

from cds_service.storage import db
from cds_service.security.auth import authenticate
from cds_service.storage.call_writes import queue_write
from cds_service.errors import InvalidRequest, PayloadTooLarge, UnknownService
from cds_service.storage.feedback import parse_feedback, store_feedback
from cds_service.hook_request import parse_hook_request
from cds_service.pipeline import BoundService, Timings, invoke
from cds_service.runtime import get_runtime

bp = Blueprint("cds", __name__)
log = logging.getLogger("cds_service.http.views")


def _json(body, status: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status=status, mimetype="application/json")


def _base_url() -> str:
    rt = get_runtime()
    return (rt.settings.public_base_url or request.host_url).rstrip("/")


def read_json_body():
    """Decode the body; size (413) and nesting (400) limits guard the parser (issue #6)."""
    rt = get_runtime()
    raw = request.get_data(cache=True)
    # A chunked body (no Content-Length) is cut at MAX_CONTENT_LENGTH by Werkzeug, not refused: reaching
    # the limit means there was more.
    chunked_at_limit = request.content_length is None and len(raw) >= rt.settings.max_body_bytes
    if len(raw) > rt.settings.max_body_bytes or chunked_at_limit:
        raise PayloadTooLarge(f"The body exceeds {rt.settings.max_body_bytes} bytes.")
    try:
        body = json.loads(raw)
    except RecursionError:
        raise InvalidRequest("The body is nested too deeply.", expression="$") from None
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("The body is not valid JSON.", expression="$") from None
    if _depth(body) > rt.settings.max_json_depth:
        raise InvalidRequest(f"The body is nested deeper than {rt.settings.max_json_depth} levels.", expression="$")
    return body


def _depth(value) -> int:
    # Only containers go on the stack; a scalar just counts as one level below its container.
    # Same result as walking every value, about 4x less CPU on a prefetch-sized body (issue #8).
    if not isinstance(value, (dict, list)):
        return 1
    deepest, stack = 1, [(value, 1)]
    while stack:
        item, d = stack.pop()
        if d > deepest:
            deepest = d
        for v in (item.values() if isinstance(item, dict) else item):
            if isinstance(v, (dict, list)):
                stack.append((v, d + 1))
            elif d >= deepest:
                deepest = d + 1
    return deepest


def _find(service_id: str) -> list[BoundService]:
    group = get_runtime().services.get(service_id)
    if not group:
        raise UnknownService(f"No CDS service with id '{service_id}'.", expression="id")
    return group


@bp.get("/cds-services")
def discovery():
    rt = get_runtime()
    g.identity = authenticate(rt, request, [f"{_base_url()}/cds-services"])
    # DISC-1/2: always 200 with a services array, built from the loaded definitions.
    return _json({"services": [b.definition.discovery() for b in rt.all_services()]})


@bp.post("/cds-services/<service_id>")
def call_service(service_id: str):
    rt = get_runtime()
    group = _find(service_id)
    g.service_id = service_id
    g.identity = authenticate(rt, request, [f"{_base_url()}/cds-services/{service_id}"])
    body = read_json_body()
    hook = body.get("hook") if isinstance(body, dict) else None
    bound = next((b for b in group if b.definition.hook == hook), group[0])  # DISC-5
    hook_request = parse_hook_request(body, _hook_spec(bound))
    g.hook, g.hook_instance, g.patient_id = hook_request.hook, hook_request.hook_instance, hook_request.patient_id
    g.timings = Timings()
    deadline = time.monotonic() + rt.settings.deadline_s
    fetcher = rt.fetcher_factory(hook_request, g.identity, deadline)
    # Cards link to the explanation page only when this app serves one (issue #7).
    links_base = _base_url() if "ui.explain" in current_app.view_functions else None
    response, ctx = invoke(bound, hook_request, now=datetime.now(timezone.utc), fetcher=fetcher,
                           base_url=links_base, link_kinds=rt.settings.ui_explain_links, timings=g.timings)
    g.build_context = ctx
    _record_cards(rt, bound, hook_request.hook_instance, response, ctx)
    g.response_body = response.to_json()  # serialised once; the explanation hook reads the cards from it
    return _json(g.response_body)


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str):
    rt = get_runtime()
    _find(service_id)
    g.service_id = service_id
    base = f"{_base_url()}/cds-services/{service_id}"
    g.identity = authenticate(rt, request, [f"{base}/feedback", base])  # SEC-5 [OUR CHOICE]
    items = parse_feedback(read_json_body())
    store_feedback(rt.engine, service_id, items)
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


def _record_cards(rt, bound: BoundService, hook_instance: str, response, ctx) -> None:
    """Remember which model version issued each card uuid (feedback analytics); no patient data."""
    if not response.cards:
        return
    p = ctx.prediction
    model = p.model if p else (bound.model.info.id if bound.model else None)
    version = p.version if p else (bound.model.info.version if bound.model else None)
    rows = [{"card_uuid": c.uuid, "service_id": bound.definition.id, "hook_instance": hook_instance, "model": model,
             "model_version": version, "indicator": c.indicator, "issued_at": time.time()} for c in response.cards]
    stmt = db.insert_ignoring_statement(rt.engine.dialect.name, db.cards_issued)
    queue_write(lambda conn: conn.execute(stmt, rows))  # committed with the call's other rows