"""SMART App Launch of the explanation page (LINK-1, LINK-2; SEC outbound allow-list).

The EHR's FHIR server and authorization server are `responses` mocks; the service is the Flask test
client (which keeps cookies like a browser). The browser test drives the same flow for real against
the simulator's demo authorization server.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from cds_service.config import ConfigError, Settings
from cds_service.ehr.contexts import build_context, now_utc
from cds_service.ehr.hook_calls import build_call
from cds_service.ehr.patients import DemoPatients, patient_from_resources
from cds_service.ehr.signing import DemoKey, Signer
from cds_service.storage import db

BASE = "https://cds.example.org"
ISS = "https://ehr.example.org/fhir/r4"
AUTH = "https://auth.example.org"
CONFIG_URL = f"{ISS}/.well-known/smart-configuration"
TOKEN_URL = f"{AUTH}/oauth2/token"
SIMULATOR_JWKS = "cds_service/demo/keys/simulator-jwks.json"
CLIENT = {"iss": "https://ehr.example.org", "jwks_file": SIMULATOR_JWKS, "fhir_servers": [ISS],
          "smart_client_id": "cds-explain", "smart_auth_origins": [AUTH]}
SMART_CONFIG = {"authorization_endpoint": f"{AUTH}/oauth2/authorize", "token_endpoint": TOKEN_URL,
                "code_challenge_methods_supported": ["S256"], "capabilities": ["launch-ehr"]}
HTML = {"Accept": "text/html"}


@pytest.fixture
def smart_app(make_app):
    """Auth on as in production; the EHR above is a configured client with a SMART client id."""
    return make_app(auth_required=True, clients=[CLIENT])


@pytest.fixture
def recorded(smart_app):
    """A real ASCVD call answered for the EHR of CLIENT (its JWT signed with the key CLIENT trusts, the
    demo key): the explanation belongs to that client (tenant isolation). (smart link, hookInstance)."""
    resources = DemoPatients().resources("demo-19")
    bound = smart_app.extensions["cds"].services["ascvd-10y-risk"][0]
    call = build_call(bound, resources, build_context("patient-view", patient_from_resources(resources), now=now_utc()))
    sign = Signer(DemoKey().key, CLIENT["iss"])
    resp = smart_app.test_client().post("/cds-services/ascvd-10y-risk", json=call.body,
                                        headers={"Authorization": f"Bearer {sign(f'{BASE}/cds-services/ascvd-10y-risk')}"})
    assert resp.status_code == 200
    smart = next(link for link in resp.get_json()["cards"][0]["links"] if link["type"] == "smart")
    return smart, call.body["hookInstance"]


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _launch(client, iss=ISS, launch="opaque-launch-123", headers=HTML):
    return client.get("/smart/launch", query_string={"iss": iss, "launch": launch}, headers=headers)


def _token_callback(app_context, seen: dict, status=200, body=None):
    """A token endpoint that checks the request the way an authorization server does (PKCE S256)."""
    def callback(request):
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        seen.update(form)
        assert form["grant_type"] == "authorization_code" and form["client_id"] == "cds-explain"
        assert form["redirect_uri"] == f"{BASE}/smart/callback"
        assert _challenge(form["code_verifier"]) == seen["code_challenge"]
        answer = body if body is not None else {"access_token": "at-secret-value", "token_type": "Bearer",
                                                "expires_in": 300, "scope": "launch", "patient": "p1"}
        if app_context is not None and body is None:
            answer["appContext"] = app_context
        return status, {"Content-Type": "application/json", "Cache-Control": "no-store"}, json.dumps(answer)
    return callback


def _complete(client, rsps, app_context, code="the-code", **token_kwargs):
    """Launch, check the authorize redirect, then come back to the callback with a code."""
    rsps.get(CONFIG_URL, json=SMART_CONFIG)
    launched = _launch(client)
    assert launched.status_code == 302, launched.get_data(as_text=True)
    location = urlsplit(launched.headers["Location"])
    params = {k: v[0] for k, v in parse_qs(location.query).items()}
    seen = {"code_challenge": params["code_challenge"]}
    rsps.add_callback(responses.POST, TOKEN_URL, callback=_token_callback(app_context, seen, **token_kwargs))
    back = client.get("/smart/callback", query_string={"code": code, "state": params["state"]}, headers=HTML)
    return launched, params, seen, back


def test_link1_launch_sends_the_browser_to_the_ehrs_authorization_server_with_pkce(smart_app):
    client = smart_app.test_client()
    with responses.RequestsMock() as rsps:
        rsps.get(CONFIG_URL, json=SMART_CONFIG)
        resp = _launch(client)
        assert resp.status_code == 302
        location = urlsplit(resp.headers["Location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == f"{AUTH}/oauth2/authorize"
        params = {k: v[0] for k, v in parse_qs(location.query).items()}
        assert params["response_type"] == "code" and params["client_id"] == "cds-explain"
        assert params["redirect_uri"] == f"{BASE}/smart/callback"
        assert params["launch"] == "opaque-launch-123" and params["aud"] == ISS and "launch" in params["scope"].split()
        assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
        assert len(params["state"]) >= 40
        # The discovery request has the timeout of the settings (redirects: see the 302 case below).
        assert rsps.calls[0].request.req_kwargs["timeout"] == (2.0, 5.0)
    cookie = resp.headers["Set-Cookie"]
    assert f"cds_smart_state={params['state']}" in cookie and "HttpOnly" in cookie and "Path=/smart/" in cookie
    assert "Secure" in cookie and "SameSite=None" in cookie  # https: also works inside an EHR's iframe
    with smart_app.extensions["cds"].engine.connect() as conn:
        row = conn.execute(db.smart_launches.select()).mappings().one()
    assert row["state_key"] != params["state"] and row["token_endpoint"] == TOKEN_URL  # only its hash is stored


def test_link2_callback_exchanges_the_code_and_opens_the_cards_explanation(smart_app, recorded):
    smart, hook_instance = recorded
    client = smart_app.test_client()
    with responses.RequestsMock() as rsps:
        _, params, seen, back = _complete(client, rsps, smart["appContext"])
        assert rsps.calls[1].request.req_kwargs["timeout"] == (2.0, 5.0)
    assert seen["code"] == "the-code"
    assert back.status_code == 303
    assert back.headers["Location"] == f"/explain/{json.loads(smart['appContext'])['explanation']}" and hook_instance
    assert "cds_smart_state=;" in back.headers["Set-Cookie"]  # the launch's cookie is cleared
    page = client.get(back.headers["Location"])
    assert page.status_code == 200 and '<svg role="img"' in page.get_data(as_text=True)
    # The audit row of the callback says which card's explanation was opened, for which (hashed) patient.
    with smart_app.extensions["cds"].engine.connect() as conn:
        row = conn.execute(db.audit.select().where(db.audit.c.status == 303)).mappings().one()
    assert row["service_id"] == "ascvd-10y-risk" and row["hook_instance"] == hook_instance
    assert row["patient_hash"] and row["patient_hash"] != "p1"


def test_link2_a_state_is_used_once(smart_app, recorded):
    smart, _ = recorded
    client = smart_app.test_client()
    with responses.RequestsMock() as rsps:
        _, params, _, back = _complete(client, rsps, smart["appContext"])
        assert back.status_code == 303
        client.set_cookie("cds_smart_state", params["state"], path="/smart/")  # even with the cookie back
        again = client.get("/smart/callback", query_string={"code": "the-code", "state": params["state"]}, headers=HTML)
        assert len(rsps.calls) == 2  # no second token request
    assert again.status_code == 400 and "expired or was already used" in again.get_data(as_text=True)


def test_callback_from_another_browser_is_refused(smart_app):
    """RFC 6749 §10.12 (CSRF): the state must match the cookie of the browser that began the launch."""
    client = smart_app.test_client()
    with responses.RequestsMock() as rsps:
        rsps.get(CONFIG_URL, json=SMART_CONFIG)
        params = parse_qs(urlsplit(_launch(client).headers["Location"]).query)
        other = smart_app.test_client()  # no cookie
        resp = other.get("/smart/callback", query_string={"code": "c", "state": params["state"][0]}, headers=HTML)
        wrong = client.get("/smart/callback", query_string={"code": "c", "state": "not-the-state"}, headers=HTML)
        assert len(rsps.calls) == 1  # no token request for either
    assert resp.status_code == 400 and "started in this browser" in resp.get_data(as_text=True)
    assert wrong.status_code == 400


def test_an_expired_launch_is_refused(make_app):
    app = make_app(auth_required=True, clients=[CLIENT], smart_launch_ttl_s=1)
    client = app.test_client()
    with responses.RequestsMock() as rsps:
        rsps.get(CONFIG_URL, json=SMART_CONFIG)
        state = parse_qs(urlsplit(_launch(client).headers["Location"]).query)["state"][0]
        with app.extensions["cds"].engine.begin() as conn:
            conn.execute(db.smart_launches.update().values(created_at=time.time() - 5))
        resp = client.get("/smart/callback", query_string={"code": "c", "state": state}, headers=HTML)
    assert resp.status_code == 400 and "expired" in resp.get_data(as_text=True)


@pytest.mark.parametrize("iss, status", [
    ("https://evil.example.com/fhir", 403),   # not any client's FHIR server
    ("https://ehr.example.org/fhir", 403),    # a prefix of the allowed one is another server
    ("http://ehr.example.org/fhir/r4", 403),  # plain http to a non-loopback host
    ("javascript:alert(1)", 400),
    ("", 400),
])
def test_unknown_ehrs_get_no_request_at_all(smart_app, iss, status):
    """Outbound allow-list: only a configured client's FHIR server is ever contacted."""
    with responses.RequestsMock() as rsps:  # any request would fail: nothing is registered
        resp = _launch(smart_app.test_client(), iss=iss)
        assert len(rsps.calls) == 0
    assert resp.status_code == status
    assert "Set-Cookie" not in resp.headers


def test_a_client_without_smart_client_id_cannot_launch(make_app):
    client = {k: v for k, v in CLIENT.items() if k not in ("smart_client_id", "smart_auth_origins")}
    app = make_app(auth_required=True, clients=[client])
    with responses.RequestsMock() as rsps:
        resp = _launch(app.test_client())
        assert len(rsps.calls) == 0
    assert resp.status_code == 403 and "smart_client_id" in resp.get_data(as_text=True)


def test_with_auth_off_the_fhir_servers_setting_and_smart_client_id_apply(make_app):
    app = make_app(fhir_servers=[ISS], smart_client_id="dev-app", smart_auth_origins=[AUTH])
    with responses.RequestsMock() as rsps:
        rsps.get(CONFIG_URL, json=SMART_CONFIG)
        resp = _launch(app.test_client())
    assert resp.status_code == 302 and "client_id=dev-app" in resp.headers["Location"]


def test_a_launch_without_the_launch_parameter_is_explained(smart_app):
    """Opening the smart link directly (not through the EHR) says what happened; nothing is fetched."""
    with responses.RequestsMock() as rsps:
        resp = _launch(smart_app.test_client(), launch="")
        assert len(rsps.calls) == 0
    assert resp.status_code == 400 and "completed by the EHR" in resp.get_data(as_text=True)


@pytest.mark.parametrize("answer, message", [
    (dict(status=404, json={}), "HTTP 404"),
    (dict(status=302, headers={"Location": "https://evil.example.com/conf"}), "HTTP 302"),  # never followed
    (dict(body="<html>not json</html>"), "not JSON"),
    (dict(json=["not", "an", "object"]), "not a JSON object"),
    (dict(json={**SMART_CONFIG, "token_endpoint": "https://elsewhere.example.com/token"}), "smart_auth_origins"),
    (dict(json={**SMART_CONFIG, "authorization_endpoint": "http://auth.example.org/authorize"}), "not an https URL"),
    (dict(json={k: v for k, v in SMART_CONFIG.items() if k != "token_endpoint"}), "no token_endpoint"),
    (dict(json={**SMART_CONFIG, "code_challenge_methods_supported": ["plain"]}), "PKCE S256"),
    (dict(body=requests.ConnectTimeout("slow")), "could not be reached"),
    (dict(body=b"{" + b" " * 70000 + b"}"), "too large"),
])
def test_a_bad_smart_configuration_stops_the_launch_with_502(smart_app, answer, message):
    with responses.RequestsMock() as rsps:
        rsps.get(CONFIG_URL, **answer)
        resp = _launch(smart_app.test_client())
    assert resp.status_code == 502, resp.get_data(as_text=True)
    assert message in resp.get_data(as_text=True)
    assert "Set-Cookie" not in resp.headers


def test_err3_a_program_asking_for_json_gets_an_operation_outcome(smart_app):
    with responses.RequestsMock():
        resp = _launch(smart_app.test_client(), iss="https://evil.example.com/fhir", headers={"Accept": "application/json"})
    assert resp.status_code == 403 and resp.mimetype == "application/fhir+json"
    body = resp.get_json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] == "security"


def test_the_authorization_server_refusing_is_shown(smart_app):
    client = smart_app.test_client()
    with responses.RequestsMock() as rsps:
        rsps.get(CONFIG_URL, json=SMART_CONFIG)
        state = parse_qs(urlsplit(_launch(client).headers["Location"]).query)["state"][0]
        resp = client.get("/smart/callback", query_string={"error": "access_denied", "state": state}, headers=HTML)
    assert resp.status_code == 403 and "access_denied" in resp.get_data(as_text=True)


@pytest.mark.parametrize("token_kwargs, status, message", [
    (dict(status=400, body={"error": "invalid_grant"}), 502, "invalid_grant"),
    (dict(body={"token_type": "Bearer"}), 502, "no bearer access token"),
    (dict(body={"access_token": "x", "token_type": "MAC"}), 502, "no bearer access token"),
])
def test_a_failed_token_exchange_is_a_clear_error(smart_app, token_kwargs, status, message):
    client = smart_app.test_client()
    with responses.RequestsMock() as rsps:
        *_, back = _complete(client, rsps, None, **token_kwargs)
    assert back.status_code == status and message in back.get_data(as_text=True)


def _signed(client=(CLIENT["iss"], ""), service="ascvd-10y-risk", hook_instance="abc", expired=False):
    """appContext carrying a genuine capability token of the app (signed with its ui_link_secret)."""
    def make(app):
        signer = app.extensions["cds"].link_signer
        now = time.time() - signer.ttl_s - 1 if expired else None
        return json.dumps({"explanation": signer.token(client, service, hook_instance, now=now)})
    return make


@pytest.mark.parametrize("app_context, status, message", [
    (None, 422, "context (appContext)"),  # Oracle Health: appContext unsupported (LINK-2)
    ("not json", 422, "context (appContext)"),
    # The pre-capability appContext: a service and hookInstance anyone could write.
    (json.dumps({"service": "ascvd-10y-risk", "hookInstance": "abc"}), 422, "context (appContext)"),
    (json.dumps({"explanation": "not-a-token"}), 404, "does not name an explanation"),
    (json.dumps({"explanation": "eyJhIjoxfQ." + "A" * 43}), 404, "does not name an explanation"),  # forged
    (_signed(client=("https://other-ehr.example", "")), 404, "does not name an explanation"),  # another EHR's card
    (_signed(service="no-such-service"), 404, "does not name an explanation"),
    (_signed(expired=True), 404, "does not name an explanation"),
])
def test_link2_app_context_must_name_one_of_our_explanations(smart_app, app_context, status, message):
    client = smart_app.test_client()
    if callable(app_context):
        app_context = app_context(smart_app)
    with responses.RequestsMock() as rsps:
        *_, back = _complete(client, rsps, app_context)
    assert back.status_code == status and message in back.get_data(as_text=True)


def test_no_code_state_verifier_launch_or_token_in_any_log_record(smart_app, recorded, caplog):
    smart, _ = recorded
    client = smart_app.test_client()
    caplog.set_level(logging.DEBUG)
    with responses.RequestsMock() as rsps:
        _, params, seen, back = _complete(client, rsps, smart["appContext"], code="code-secret-value")
    assert back.status_code == 303
    logged = "\n".join(r.getMessage() + json.dumps(r.__dict__, default=str) for r in caplog.records)
    assert "smart_launch_completed" in logged  # the flow is logged…
    for secret in ("code-secret-value", params["state"], seen["code_verifier"], "opaque-launch-123", "at-secret-value"):
        assert secret not in logged  # …without what would let anyone finish or replay it


@pytest.mark.parametrize("kinds, types", [(["absolute"], ["absolute"]), (["smart"], ["smart"]),
                                          (["smart", "absolute"], ["smart", "absolute"])])
def test_link1_ui_explain_links_chooses_the_links_and_the_page_is_kept_either_way(make_app, kinds, types):
    """Integrators whose EHR cannot launch SMART links with appContext keep only `absolute`."""
    app = make_app(ui_explain_links=kinds)
    resources = DemoPatients().resources("demo-19")
    bound = app.extensions["cds"].services["ascvd-10y-risk"][0]
    call = build_call(bound, resources, build_context("patient-view", patient_from_resources(resources), now=now_utc()))
    client = app.test_client()
    body = client.post("/cds-services/ascvd-10y-risk", json=call.body).get_json()
    links = body["cards"][0]["links"]
    assert [link["type"] for link in links] == types
    # Whichever links the card carries, they name the one explanation kept for this call.
    tokens = {json.loads(link["appContext"])["explanation"] if link["type"] == "smart" else link["url"].rsplit("/", 1)[1]
              for link in links}
    (token,) = tokens
    page = client.get(f"/explain/{token}")
    assert page.status_code == 200


@pytest.mark.parametrize("values, message", [
    ({"ui_explain_links": ["smart", "iframe"]}, "ui_explain_links"),
    ({"smart_scope": "openid fhirUser"}, "launch"),
    ({"smart_timeout": [1]}, "smart_timeout"),
    ({"clients": [{**CLIENT, "fhir_servers": []}]}, "smart_client_id needs fhir_servers"),
    ({"clients": [{**CLIENT, "smart_auth_origins": ["https://auth.example.org/oauth2"]}]}, "must be an origin"),
    ({"clients": [{**CLIENT, "smart_auth_origins": ["http://auth.example.org"]}]}, "https"),
])
def test_smart_settings_are_checked_at_start(values, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_mapping(values)
