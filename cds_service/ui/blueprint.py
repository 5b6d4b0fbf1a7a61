"""The "ui" blueprint and what its views share."""
from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, current_app

from cds_service.builders.links import links_to_explanation
from cds_service.http.call_state import call_state
from cds_service.runtime import get_runtime
from cds_service.storage import explanations as explain_store
from cds_service.storage.call_writes import queue_rows

log = logging.getLogger("cds_service.ui")

PURGE_EVERY_S = 60

bp = Blueprint("ui", __name__, template_folder="templates", static_folder="static", static_url_path="/ui-static")


def ui_state():
    return current_app.extensions["cds_ui"]


def record_explanation(response: Response) -> Response:
    """After-request hook of the app (registered by the factory, see `http/request_hooks.py`): after
    a successful service call, keep what its explanation page shows (no names, no ids)."""
    state = call_state()
    ctx = state.build_context
    if ctx is None or response.status_code != 200:
        return response
    if ctx.model is None and not ctx.features.features:
        return response
    try:
        cards = (state.response_body or {}).get("cards", [])  # the dict the view serialised
        # Only calls whose cards link to their explanation page are kept: nobody can open the others.
        token = ctx.explain_token
        if not token or not any(isinstance(c, dict) and links_to_explanation(c, token) for c in cards):
            return response
        client = state.identity.client if state.identity is not None else ("", "")
        rt, state = get_runtime(), ui_state()
        bound = next((b for b in rt.services.get(ctx.service.id, ()) if b.definition is ctx.service), None)
        record = explain_store.from_context(ctx, cards, bound.secondary if bound is not None else None)
        # With the call's other rows.
        queue_rows(explain_store.upsert_statement(rt.engine.dialect.name), explain_store.row_of(client, record))
        if time.time() - state.last_purge > PURGE_EVERY_S:
            state.last_purge = time.time()
            with rt.engine.begin() as conn:  # its own short transaction, at most once a minute per process
                explain_store.purge(conn, rt.settings.ui_explain_ttl_s)
    except Exception:  # the page is a convenience: never fail the CDS call because of it
        log.exception("could not record the explanation", extra={"event": "explain_store_failed"})
    return response


# The pages load only their own script and stylesheet and talk only to this service (no CDN, nothing
# from outside); inline style attributes are allowed for chart SVG and table alignment.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'")


@bp.after_request
def _page_headers(response):
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")  # explanation URLs are capabilities
    return response


@bp.app_context_processor
def _template_globals():
    settings = get_runtime().settings
    return {"config_simulator": settings.ui_simulator, "config_population": bool(settings.ui_population)}


@bp.app_template_filter("http_url")
def _http_url(value):
    """Only http(s) URLs become links (LINK-1); anything else (javascript:, data:) is dropped."""
    return value if isinstance(value, str) and value.startswith(("https://", "http://")) else None


@bp.app_template_filter("pct")
def _pct(value):
    return "–" if value is None else f"{100 * value:.1f}%"


@bp.app_template_filter("utc")
def _utc(value):
    """Epoch seconds as 'YYYY-MM-DD HH:MM' UTC."""
    return "–" if value is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(value))
