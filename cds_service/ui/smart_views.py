"""The SMART launch of the explanation page: `/smart/launch` and `/smart/callback`.

The flow itself (allow-list, discovery, PKCE, token exchange) is `cds_service.security.smart_launch`; the
launch in progress waits in the database (`smart_state`) and is bound to the browser that began it
by a cookie holding its `state` (RFC 6749 §10.12: a callback from another browser is refused).
"""
from __future__ import annotations

import hmac
import logging

from flask import Response, redirect, render_template, request, url_for

from cds_service.builders.links import LAUNCH_PATH, decode_app_context
from cds_service.http.call_state import call_state
from cds_service.http.errors import outcome_response
from cds_service.runtime import base_url, get_runtime
from cds_service.security import smart_launch
from cds_service.security.smart_launch import SmartLaunchError
from cds_service.storage import smart_state
from cds_service.ui.blueprint import bp, ui_state

log = logging.getLogger("cds_service.smart")

STATE_COOKIE = "cds_smart_state"
CALLBACK_PATH = "/smart/callback"


@bp.get(LAUNCH_PATH)
def smart_launch_start():
    """SMART EHR launch of the explanation page (a card's `smart` link, LINK-1): sends the browser to the EHR's authorization server.

    Query: `iss` (the EHR's FHIR base URL, allow-listed) and `launch` (opaque), added by the EHR.
    """
    rt = get_runtime()
    redirect_uri = base_url() + CALLBACK_PATH
    url, pending = smart_launch.begin(rt.settings, ui_state().discovery, request.args.get("iss"),
                                      request.args.get("launch"), redirect_uri)
    smart_state.save(rt.engine, pending, rt.settings.smart_launch_ttl_s)
    resp = redirect(url, 302)
    secure = redirect_uri.startswith("https://")
    # SameSite=None (https only) so that the launch also works inside an EHR's iframe; Lax over plain http.
    resp.set_cookie(STATE_COOKIE, pending.state, max_age=rt.settings.smart_launch_ttl_s, path="/smart/",
                    secure=secure, httponly=True, samesite="None" if secure else "Lax")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get(CALLBACK_PATH)
def smart_callback():
    """OAuth redirect of the SMART launch: exchanges the code, reads the card's appContext (LINK-2), redirects to its explanation page."""
    rt = get_runtime()
    if request.args.get("error"):
        error = request.args["error"]
        reason = error if error.isprintable() and len(error) < 100 else "an error"
        raise SmartLaunchError(f"The EHR's authorization server did not authorise the launch ({reason}).",
                               status=403, code="security")
    state = request.args.get("state", "")
    cookie = request.cookies.get(STATE_COOKIE, "")
    if not state or not cookie or not hmac.compare_digest(state.encode(), cookie.encode()):
        raise SmartLaunchError("This callback does not belong to a launch started in this browser. "
                               "Open the link from the card again.", code="security")
    pending = smart_state.take(rt.engine, state, rt.settings.smart_launch_ttl_s)
    if pending is None:
        raise SmartLaunchError("This launch has expired or was already used. Open the link from the card again.")
    result = smart_launch.finish(rt.settings, ui_state().http, pending, request.args.get("code"))
    token = decode_app_context(result.app_context)
    if token is None:
        # Some EHRs launch without passing appContext on (LINK-2): say so instead of guessing a card.
        raise SmartLaunchError("The EHR launched the explanation without the card's context (appContext), so it is "
                               "not known which card to explain.", status=422, code="incomplete")
    grant = rt.link_signer.verify(token) if rt.link_signer is not None else None  # set whenever the pages are on
    # The card must have been issued to the EHR that launched it (tenant isolation): one EHR's launch
    # cannot open another's explanation, even with a genuine token.
    if grant is None or grant.iss != pending.client_iss or grant.service_id not in rt.services:
        raise SmartLaunchError("The card's context does not name an explanation this EHR may open (or its link "
                               "has expired). Open the link from the card again.", status=404, code="not-found")
    # Who opened which card's explanation goes to the audit row of this request (patient id hashed there).
    call = call_state()
    call.service_id, call.hook_instance, call.patient_id = grant.service_id, grant.hook_instance, result.patient
    log.info("SMART launch completed", extra={"event": "smart_launch_completed", "iss": pending.iss,
                                              "service": grant.service_id, "hookInstance": grant.hook_instance})
    resp = redirect(url_for("ui.explain", token=token), 303)
    resp.delete_cookie(STATE_COOKIE, path="/smart/")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.errorhandler(SmartLaunchError)
def _launch_failed(err: SmartLaunchError):
    """A person in a browser gets a page; a program asking for JSON gets the OperationOutcome (ERR-3)."""
    best = request.accept_mimetypes.best_match(["text/html", "application/fhir+json", "application/json"])
    if best == "text/html":
        resp = Response(render_template("smart_error.html", message=err.message, status=err.status), err.status)
    else:
        resp = outcome_response(err.status, err.message, err.code)
    resp.headers["Cache-Control"] = "no-store"
    if request.path == CALLBACK_PATH:
        resp.delete_cookie(STATE_COOKIE, path="/smart/")
    return resp
