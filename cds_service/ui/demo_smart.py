"""The simulator's SMART authorization server (DEMO ONLY): what lets it launch a card's `smart` link
as an EHR does, so that the whole SMART App Launch of the explanation page can be tried
and tested without an EHR.

The simulator's "FHIR base" `{base}/simulator/fhir` serves only its `.well-known/smart-configuration`.
The launch id and the authorization code are ES384 tokens signed with the simulator's demo key, so any
worker can check them; a code is accepted once (the `jti` replay table). The one registered app is
this service: client id = the `smart_client_id` of the simulator's [[clients]] entry, redirect URI =
`{base}/smart/callback`. Approval is automatic: the simulator's user is "logged in".
"""
from __future__ import annotations

import hmac
import secrets
import time
import uuid
from urllib.parse import urlencode

import jwt
from flask import Response, redirect, request
from werkzeug.wrappers import Response as WerkzeugResponse

from cds_service.ehr import signing
from cds_service.errors import InvalidRequest
from cds_service.runtime import base_url, get_runtime
from cds_service.security.replay import replay_key
from cds_service.security.smart_launch import pkce_challenge
from cds_service.ui.blueprint import bp, ui_state
from cds_service.ui.simulator_views import json_body, json_response, require_simulator

LAUNCH_LIFETIME_S = 300
CODE_LIFETIME_S = 60


def fhir_base(base: str) -> str:
    return f"{signing.issuer(base)}/fhir"


def registered_client_id(base: str) -> str | None:
    """Our client id at the simulator: configured on the simulator's own [[clients]] entry."""
    client = next((c for c in get_runtime().settings.clients if c.iss == signing.issuer(base)), None)
    return client.smart_client_id if client and client.smart_client_id else None


def _oauth_error(error: str, description: str) -> Response:
    """RFC 6749 §5.2 error response of the token endpoint."""
    resp = json_response({"error": error, "error_description": description}, 400)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/simulator/fhir/.well-known/smart-configuration")
def demo_smart_configuration():
    """The simulator's SMART configuration (demo authorization server of the EHR simulator)."""
    require_simulator()
    base = signing.issuer(base_url())
    return json_response({
        "authorization_endpoint": f"{base}/auth/authorize", "token_endpoint": f"{base}/auth/token",
        "grant_types_supported": ["authorization_code"], "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"], "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": ["launch", "openid", "fhirUser", "patient/*.read"],
        "capabilities": ["launch-ehr", "client-public", "context-ehr-patient"],
    })


@bp.post("/simulator/api/launch")
def demo_launch():
    """A launch id for one of the cards' smart links: it carries the link's appContext and the patient."""
    require_simulator()
    body, base = json_body(), base_url()
    app_context, patient = body.get("appContext"), body.get("patient")
    if not isinstance(patient, str) or patient not in ui_state().patients:
        raise InvalidRequest("Unknown patient.", expression="patient")
    if app_context is not None and (not isinstance(app_context, str) or len(app_context) > 2000):
        raise InvalidRequest("appContext must be a string of at most 2000 characters (LINK-2).", expression="appContext")
    if registered_client_id(base) is None:
        raise InvalidRequest("SMART launches are not configured: give the simulator's [[clients]] entry a "
                             "smart_client_id and its FHIR base in fhir_servers (config/demo.toml does).")
    now = int(time.time())
    claims = {"use": "launch", "aud": fhir_base(base), "iat": now, "exp": now + LAUNCH_LIFETIME_S, "patient": patient}
    if app_context is not None:
        claims["appContext"] = app_context
    return json_response({"iss": fhir_base(base), "launch": ui_state().demo_key.seal(claims)})


@bp.get("/simulator/auth/authorize")
def demo_authorize():
    require_simulator()
    base, args = base_url(), request.args
    client_id = registered_client_id(base)
    # A wrong client or redirect URI is never redirected to (RFC 6749 §4.1.2.1): it gets an error page.
    if not client_id or args.get("client_id") != client_id:
        raise InvalidRequest("Unknown client_id.", expression="client_id")
    redirect_uri = f"{base}/smart/callback"
    if args.get("redirect_uri") != redirect_uri:
        raise InvalidRequest("redirect_uri is not the one registered for this client.", expression="redirect_uri")

    def back(**params) -> WerkzeugResponse:
        params = {k: v for k, v in {**params, "state": args.get("state")}.items() if v is not None}
        return redirect(f"{redirect_uri}?{urlencode(params)}", 302)

    if args.get("response_type") != "code":
        return back(error="unsupported_response_type")
    if args.get("code_challenge_method") != "S256" or not args.get("code_challenge"):
        return back(error="invalid_request", error_description="PKCE S256 is required")
    if args.get("aud") != fhir_base(base):
        return back(error="invalid_request", error_description="aud is not this FHIR server")
    if "launch" not in (args.get("scope") or "").split():
        return back(error="invalid_scope", error_description="an EHR launch needs the launch scope")
    try:
        launch = ui_state().demo_key.unseal(args.get("launch", ""), fhir_base(base))
    except jwt.PyJWTError:
        return back(error="invalid_request", error_description="unknown or expired launch")
    if launch.get("use") != "launch":
        return back(error="invalid_request", error_description="unknown or expired launch")
    now = int(time.time())
    code = ui_state().demo_key.seal({
        "use": "code", "aud": f"{signing.issuer(base)}/auth/token", "iat": now, "exp": now + CODE_LIFETIME_S,
        "jti": str(uuid.uuid4()), "client_id": client_id, "redirect_uri": redirect_uri, "scope": args["scope"],
        "code_challenge": args["code_challenge"], "patient": launch.get("patient"),
        "appContext": launch.get("appContext"),
    })
    return back(code=code)


@bp.post("/simulator/auth/token")
def demo_token():
    """The simulator's demo token endpoint: code + PKCE verifier in, token response with patient and appContext out."""
    require_simulator()
    base, form = base_url(), request.form
    if form.get("grant_type") != "authorization_code":
        return _oauth_error("unsupported_grant_type", "only authorization_code")
    try:
        code = ui_state().demo_key.unseal(form.get("code", ""), f"{signing.issuer(base)}/auth/token")
    except jwt.PyJWTError:
        return _oauth_error("invalid_grant", "unknown or expired code")
    if code.get("use") != "code" or form.get("client_id") != code.get("client_id") \
            or form.get("redirect_uri") != code.get("redirect_uri"):
        return _oauth_error("invalid_grant", "the code was issued to another client or redirect URI")
    verifier = form.get("code_verifier", "")
    if not verifier or not hmac.compare_digest(pkce_challenge(verifier), str(code.get("code_challenge", ""))):
        return _oauth_error("invalid_grant", "code_verifier does not match the code_challenge (PKCE)")
    if ui_state().used_codes.seen_before(replay_key(signing.issuer(base), code["jti"]), float(code["exp"])):
        return _oauth_error("invalid_grant", "the code was already used")
    body = {"access_token": secrets.token_urlsafe(32), "token_type": "Bearer", "expires_in": 300,
            "scope": code.get("scope"), "patient": code.get("patient")}
    if code.get("appContext") is not None:
        body["appContext"] = code["appContext"]  # LINK-2: the card's appContext, delivered with the token
    resp = json_response(body)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Pragma"] = "no-cache"
    return resp
