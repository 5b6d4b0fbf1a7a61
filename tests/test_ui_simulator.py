"""EHR simulator backend: hook contexts, prefetch, signing like an EHR, and the demo's trust."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jwt
import pytest

from cds_service.config import Settings
from cds_service.ehr.contexts import build_context
from cds_service.ehr.drafts import DRAFT_ORDERS, DRAFTS_BY_KEY
from cds_service.ehr.hook_calls import build_call
from cds_service.ehr.patients import DemoPatients
from cds_service.ehr.signing import PUBLIC_JWKS
from cds_service.hook_request import parse_hook_request
from hooks.catalog import HOOKS

ROOT = Path(__file__).resolve().parent.parent
BASE = "https://cds.example.org"
SIMULATOR_CLIENT = {"iss": f"{BASE}/simulator", "jwks_file": "cds_service/demo/keys/simulator-jwks.json",
                    "jku": [f"{BASE}/simulator/.well-known/jwks.json"]}
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def patients():
    return DemoPatients()


@pytest.fixture
def sim(make_app):
    return make_app(ui_simulator=True)


def _calls(client, patient, hook, drafts=()):
    r = client.post("/simulator/api/calls", json={"patient": patient, "hook": hook, "drafts": list(drafts)})
    assert r.status_code == 200, r.data
    return r.get_json()["calls"]


def test_simulator_is_off_unless_configured(make_app):
    """The simulator signs with a published key, so only a demo configuration turns it on."""
    client = make_app().test_client()
    assert client.get("/simulator").status_code == 404
    assert client.post("/simulator/api/token", json={"path": "/cds-services/ascvd-10y-risk/feedback"}).status_code == 404
    assert client.get("/").headers["Location"].endswith("/analytics")


def test_home_redirects_to_the_simulator_and_lists_patients_and_hooks(sim):
    client = sim.test_client()
    assert client.get("/").headers["Location"].endswith("/simulator")
    page = client.get("/simulator").get_data(as_text=True)
    assert page.count('class="patient"') >= 25
    for bound in sim.extensions["cds"].all_services():  # a button per hook a loaded service answers
        assert f'id="fire-{bound.definition.hook}"' in page and bound.definition.id in page


def test_pages_fetch_nothing_from_outside(make_app):
    """The pages' Content-Security-Policy allows only this service: no CDN, no external script or font."""
    client = make_app(ui_simulator=True, analytics_token="operator-token-0123456789").test_client()
    operator = {"Authorization": "Bearer operator-token-0123456789"}
    for path in ("/simulator", "/analytics", "/explain/not-a-link-token"):
        csp = client.get(path, headers=operator).headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self';" in csp and "connect-src 'self'" in csp
    page = client.get("/simulator").get_data(as_text=True)
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page


@pytest.mark.parametrize("hook", list(HOOKS))
def test_hook_contexts_pass_the_hook_rules(patients, hook):
    """HOOK-*: the simulator's context for every hook is what the service's own parser accepts."""
    context = build_context(hook, patients.patient("demo-02"), now=NOW,
                            drafts=[DRAFTS_BY_KEY["metformin"], DRAFTS_BY_KEY["apixaban"]], selected=["draft-apixaban"])
    body = {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context}
    request = parse_hook_request(body, HOOKS[hook])
    assert request.patient_id == "demo-02"
    if hook in ("order-select", "order-sign"):
        drafts = [e["resource"] for e in context["draftOrders"]["entry"]]
        assert {d["status"] for d in drafts} == {"draft"}
        assert [d["medicationCodeableConcept"]["coding"][0]["code"] for d in drafts] == ["6809", "1364430"]
    if hook == "order-select":
        assert context["selections"] == ["MedicationRequest/draft-apixaban"]
    if hook == "encounter-discharge":  # demo-02's inpatient stay, not the clinic visit
        assert context["encounterId"] == "demo-02-admission"


def test_draft_orders_carry_rxnorm_ingredients_and_a_readable_dose():
    codes = {d.key: d.rxcui for d in DRAFT_ORDERS}
    # RxCUIs as listed in shared/clinical/data-and-models.md.
    assert codes["metformin"] == "6809" and codes["apixaban"] == "1364430" and codes["ibuprofen"] == "5640"
    order = DRAFT_ORDERS[0].resource("p1", "Practitioner/x", None, "2026-01-01")
    dose = order["dosageInstruction"][0]
    assert dose["doseAndRate"][0]["doseQuantity"] == {"value": 500, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}
    assert dose["timing"]["repeat"]["frequency"] == 2


def test_every_loaded_service_gets_its_whole_prefetch(sim, patients):
    """PREFETCH-2: each template of each loaded service is rendered and answered from the patient's data."""
    for bound in sim.extensions["cds"].all_services():
        patient = patients.patient("demo-02")
        context = build_context(bound.definition.hook, patient, now=NOW, drafts=[DRAFTS_BY_KEY["metformin"]])
        call = build_call(bound, patient.resources, context)
        assert call.notes == [], f"{bound.definition.id}: {call.notes}"
        assert set(call.body["prefetch"]) == set(bound.definition.prefetch)


def test_demo_patients_trigger_every_loaded_service(sim, patients):
    """The bundled patients show every loaded service at work: each answers at least one of them with a card."""
    client = sim.test_client()
    silent = []
    for bound in sim.extensions["cds"].all_services():
        hook, sid = bound.definition.hook, bound.definition.id
        drafts = [[d.key] for d in DRAFT_ORDERS] if hook in ("order-select", "order-sign") else [[]]
        found = False
        for pid in patients.ids:
            for d in drafts:
                for call in _calls(client, pid, hook, d):
                    if call["service_id"] != sid:
                        continue
                    resp = client.post("/" + call["url"], json=call["request"])
                    assert resp.status_code == 200, (sid, pid, resp.data)
                    found = found or bool(resp.get_json()["cards"])
                    for link in (lk for c in resp.get_json()["cards"] for lk in c.get("links", [])):
                        if link["url"].startswith(f"{BASE}/explain/"):  # every explanation link opens a page
                            page = client.get(link["url"].removeprefix(BASE))
                            # with each score's contributions (a chart, or a product equation's factors), or
                            # what would make a score that was not calculated computable
                            assert page.status_code == 200 and (b"<svg" in page.data or b'class="terms"' in page.data
                                                                or b"What would make it computable" in page.data), (sid, pid)
                if found:
                    break
            if found:
                break
        if not found:
            silent.append(sid)
    assert not silent, f"no demo patient gets a card from: {silent} (extend scripts/make_demo_patients.py)"


def test_calls_are_signed_like_an_ehr(sim):
    """SEC-3/4/5: ES384 with kid, typ JWT and a jku to the simulator's JWKS; iss, aud = endpoint, exp = iat + 300, fresh jti."""
    client = sim.test_client()
    calls = _calls(client, "demo-19", "patient-view") + _calls(client, "demo-19", "patient-view")
    jwks = client.get("/simulator/.well-known/jwks.json").get_json()
    assert jwks == json.loads(PUBLIC_JWKS.read_text())
    assert all(k["kty"] == "EC" and "d" not in k for k in jwks["keys"])
    jtis = set()
    for call in calls:
        header = jwt.get_unverified_header(call["token"])
        assert header == {"alg": "ES384", "kid": jwks["keys"][0]["kid"], "typ": "JWT",
                          "jku": f"{BASE}/simulator/.well-known/jwks.json"}
        key = jwt.PyJWK(jwks["keys"][0])
        claims = jwt.decode(call["token"], key.key, algorithms=["ES384"], audience=call["aud"])
        assert call["aud"] == f"{BASE}/cds-services/{call['service_id']}"
        assert claims["iss"] == f"{BASE}/simulator" and claims["exp"] - claims["iat"] == 300
        jtis.add(claims["jti"])
    assert len(jtis) == len(calls)


def test_demo_trust_signed_calls_and_feedback_are_accepted(make_app):
    """With auth on and the simulator as a trusted client, its calls and feedback pass; unsigned ones get 401."""
    app = make_app(ui_simulator=True, auth_required=True, clients=[SIMULATOR_CLIENT])
    client = app.test_client()
    call = next(c for c in _calls(client, "demo-19", "patient-view") if c["service_id"] == "ascvd-10y-risk")
    assert client.post("/" + call["url"], json=call["request"]).status_code == 401
    resp = client.post("/" + call["url"], json=call["request"], headers={"Authorization": f"Bearer {call['token']}"})
    assert resp.status_code == 200
    card = resp.get_json()["cards"][0]
    path = "/cds-services/ascvd-10y-risk/feedback"
    token = client.post("/simulator/api/token", json={"path": path}).get_json()
    assert token["aud"] == BASE + path
    feedback = {"feedback": [{"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-03-01T12:00:00Z"}]}
    assert client.post(path, json=feedback, headers={"Authorization": f"Bearer {token['token']}"}).status_code == 200


@pytest.mark.parametrize("path", ["/cds-services/ascvd-10y-risk", "/cds-services", "https://evil.example/cds-services/x/feedback",
                                  "/cds-services/no-such-service/feedback", None])
def test_token_endpoint_signs_only_feedback_of_loaded_services(sim, path):
    resp = sim.test_client().post("/simulator/api/token", json={"path": path})
    assert resp.status_code == 400
    assert resp.get_json()["resourceType"] == "OperationOutcome"


def test_bad_simulator_requests_get_an_operation_outcome(sim):
    client = sim.test_client()
    for body in ({"patient": "nobody", "hook": "patient-view"}, {"patient": "demo-01", "hook": "no-such-hook"},
                 {"patient": "demo-01", "hook": "order-sign", "drafts": []}):
        if body["hook"] == "order-sign" and not any(b.definition.hook == "order-sign" for b in sim.extensions["cds"].all_services()):
            continue
        resp = client.post("/simulator/api/calls", json=body)
        assert resp.status_code == 400 and resp.get_json()["resourceType"] == "OperationOutcome"


def test_demo_config_trusts_the_simulator_and_the_sandbox():
    """config/demo.toml: auth on, the simulator's shipped key and the CDS Hooks Sandbox's published key (SEC-7)."""
    settings = Settings.load(ROOT / "config" / "demo.toml", env={})
    assert settings.auth_required and settings.ui_simulator
    by_iss = {c.iss: c for c in settings.clients}
    simulator = by_iss[f"{settings.public_base_url}/simulator"]
    assert simulator.jku == (f"{settings.public_base_url}/simulator/.well-known/jwks.json",)
    assert [k["kid"] for k in simulator.static_keys] == [json.loads(PUBLIC_JWKS.read_text())["keys"][0]["kid"]]
    sandbox = by_iss["https://sandbox.cds-hooks.org"]
    assert [k["kid"] for k in sandbox.static_keys] == ["44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"]


def test_demo_patient_times_follow_the_clock():
    """The latest clinical time of the set is half an hour before now, whatever today is; ages do not change."""
    for now in (datetime(2031, 7, 15, 3, 0, tzinfo=timezone.utc), datetime(2027, 1, 2, 23, 59, tzinfo=timezone.utc)):
        shifted = DemoPatients(clock=lambda now=now: now)
        times = [r["effectiveDateTime"] for pid in shifted.ids for r in shifted.resources(pid) if r.get("effectiveDateTime")]
        latest = max(datetime.fromisoformat(t.replace("Z", "+00:00")) for t in times)
        assert latest == now - timedelta(minutes=30)
        patient = shifted.resources("demo-01")[0]
        assert shifted.summary("demo-01").age == DemoPatients(clock=lambda: NOW).summary("demo-01").age
        assert len(patient["birthDate"]) == 10
