"""The simulator's demo SMART authorization server: the simulator launches a card's `smart`
link as an EHR does (LINK-1), and hands the card's appContext back in the token response (LINK-2).

Here the service's outbound requests to the simulator (discovery, token) are routed by `responses`
into the same app's test client; the browser test does the same over real HTTP.
"""
from __future__ import annotations

import base64
import hashlib
import json
import tomllib
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import responses

from cds_service.ehr.contexts import build_context, now_utc
from cds_service.ehr.hook_calls import build_call
from cds_service.ehr.patients import patient_from_resources
from cds_testing.paths import ROOT

BASE = "http://127.0.0.1:8080"  # config/demo.toml's public base URL
FHIR = f"{BASE}/simulator/fhir"
REDIRECT = f"{BASE}/smart/callback"


@pytest.fixture
def demo_app(make_app):
    demo = tomllib.loads((ROOT / "config" / "demo.toml").read_text(encoding="utf-8"))
    return make_app(public_base_url=BASE, clients=demo["clients"], auth_required=False, ui_simulator=True)


@pytest.fixture
def wired(demo_app):
    """responses forwards the service's requests to the simulator into the app itself."""
    client = demo_app.test_client()
    answers: list[bytes] = []

    def forward(request):
        parts = urlsplit(request.url)
        if request.method == "GET":
            r = client.get(parts.path, query_string=parts.query)
        else:
            r = client.post(parts.path, data=request.body, content_type=request.headers["Content-Type"])
        answers.append(r.get_data())
        return r.status_code, {"Content-Type": r.content_type}, r.get_data()

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.GET, f"{FHIR}/.well-known/smart-configuration", callback=forward)
        rsps.add_callback(responses.POST, f"{BASE}/simulator/auth/token", callback=forward)
        yield client, answers


def _card_links(client, patient="demo-19"):
    bound = client.application.extensions["cds"].services["ascvd-10y-risk"][0]
    resources = client.application.extensions["cds_ui"].patients.resources(patient)
    call = build_call(bound, resources, build_context("patient-view", patient_from_resources(resources), now=now_utc()))
    cards = client.post("/cds-services/ascvd-10y-risk", json=call.body).get_json()["cards"]
    return {link["type"]: link for link in cards[0]["links"]}, call.body["hookInstance"]


def _follow(client, response, hops=5):
    """Follow redirects the way a browser does, across the service and the simulator (one origin here)."""
    seen = []
    while response.status_code in (302, 303) and hops:
        location = urlsplit(response.headers["Location"])
        seen.append(location.path)
        response = client.get(location.path, query_string=location.query, headers={"Accept": "text/html"})
        hops -= 1
    return response, seen


def test_link1_link2_the_simulator_launches_a_smart_link_end_to_end(wired):
    client, answers = wired
    links, hook_instance = _card_links(client)
    launch = client.post("/simulator/api/launch", json={"patient": "demo-19", "appContext": links["smart"]["appContext"]})
    assert launch.status_code == 200 and launch.get_json()["iss"] == FHIR
    url = urlsplit(links["smart"]["url"])
    first = client.get(url.path, query_string=launch.get_json(), headers={"Accept": "text/html"})
    page, hops = _follow(client, first)
    token = json.loads(links["smart"]["appContext"])["explanation"]  # the capability the card carries
    assert hops == ["/simulator/auth/authorize", "/smart/callback", f"/explain/{token}"] and hook_instance not in token
    assert page.status_code == 200 and '<svg role="img"' in page.get_data(as_text=True)
    token_answer = json.loads(answers[-1])
    assert token_answer["appContext"] == links["smart"]["appContext"] and token_answer["patient"] == "demo-19"
    assert token_answer["token_type"] == "Bearer"


def _authorize_params(client, **over):
    launch = client.post("/simulator/api/launch", json={"patient": "demo-19", "appContext": "{}"}).get_json()["launch"]
    verifier = "v" * 64
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {"response_type": "code", "client_id": "cds-hooks-ml-explanation", "redirect_uri": REDIRECT,
              "launch": launch, "scope": "launch", "state": "s1", "aud": FHIR, "code_challenge": challenge,
              "code_challenge_method": "S256"}
    params.update(over)
    return {k: v for k, v in params.items() if v is not None}, verifier


@pytest.mark.parametrize("over, field", [({"client_id": "someone-else"}, "client_id"),
                                         ({"redirect_uri": "https://evil.example.com/cb"}, "redirect_uri")])
def test_an_unregistered_client_or_redirect_uri_is_never_redirected_to(demo_app, over, field):
    client = demo_app.test_client()
    params, _ = _authorize_params(client, **over)
    resp = client.get("/simulator/auth/authorize", query_string=params)
    assert resp.status_code == 400 and resp.get_json()["issue"][0]["expression"] == [field]


@pytest.mark.parametrize("over, error", [
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge": None}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"scope": "openid"}, "invalid_scope"),
    ({"aud": "https://other.example.org/fhir"}, "invalid_request"),
    ({"launch": "forged"}, "invalid_request"),
])
def test_a_bad_authorization_request_comes_back_with_an_oauth_error(demo_app, over, error):
    client = demo_app.test_client()
    params, _ = _authorize_params(client, **over)
    resp = client.get("/simulator/auth/authorize", query_string=params)
    assert resp.status_code == 302
    back = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert back["error"] == [error] and back["state"] == ["s1"] and "code" not in back


def _code(client):
    params, verifier = _authorize_params(client)
    resp = client.get("/simulator/auth/authorize", query_string=params)
    return parse_qs(urlsplit(resp.headers["Location"]).query)["code"][0], verifier


def _token(client, **form):
    return client.post("/simulator/auth/token", data=urlencode(form), content_type="application/x-www-form-urlencoded")


def test_the_token_endpoint_checks_pkce_and_uses_a_code_once(demo_app):
    client = demo_app.test_client()
    code, verifier = _code(client)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "client_id": "cds-hooks-ml-explanation"}
    wrong = _token(client, **form, code_verifier="w" * 64)
    assert wrong.status_code == 400 and wrong.get_json()["error"] == "invalid_grant"
    ok = _token(client, **form, code_verifier=verifier)
    assert ok.status_code == 200 and ok.headers["Cache-Control"] == "no-store"
    assert ok.get_json()["appContext"] == "{}" and ok.get_json()["patient"] == "demo-19"
    again = _token(client, **form, code_verifier=verifier)
    assert again.status_code == 400 and "already used" in again.get_json()["error_description"]
    other = _token(client, **{**form, "redirect_uri": "https://evil.example.com/cb"}, code_verifier=verifier)
    assert other.status_code == 400


def test_the_simulator_does_not_launch_for_an_unknown_patient(demo_app):
    resp = demo_app.test_client().post("/simulator/api/launch", json={"patient": "nobody", "appContext": "{}"})
    assert resp.status_code == 400 and resp.get_json()["resourceType"] == "OperationOutcome"


def test_simulator_cards_render_smart_links_for_launching(wired):
    client, _ = wired
    links, _ = _card_links(client)
    response = {"cards": [{"summary": "s", "indicator": "info", "source": {"label": "x"},
                           "links": list(links.values())}]}
    html = client.post("/simulator/api/cards", json={"service_id": "ascvd-10y-risk", "response": response}).get_json()["html"]
    assert 'class="card-link smart-link"' in html and "data-app-context=" in html
    assert html.count('class="card-link"') == 1  # the absolute fallback, a plain link
