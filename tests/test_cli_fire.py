"""`cds-service fire`: request building (REQ-1, HOOK-*, PREFETCH-2/3), signing (SEC-3/4/5/8) and
printing. HTTP is mocked with `responses` here; the end-to-end run under gunicorn is in
test_cli_live.py.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

import jwt
import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cds_service.builders.markdown import literal
from cds_service.cli.errors import CliError
from cds_service.cli.fire import read_draft_orders
from cds_service.cli.main import main
from cds_service.cli.terminal import plain_text, render_result
from cds_service.ehr.contexts import build_context, encounter_for
from cds_service.ehr.hook_calls import local_prefetch
from cds_service.ehr.patients import Patient, localize, patient_from_resources
from cds_service.hook_request import NO_CARD_REASON, parse_hook_request
from hooks.catalog import HOOKS

URL = "http://cds.test"
NOW = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)
ASCVD_PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "lipids": "Observation?patient={{context.patientId}}&code=http://loinc.org|2093-3,http://loinc.org|2085-9&_sort=-date",
    "user": "Practitioner/{{userPractitionerId}}",
    "fancy": "MedicationRequest?_id={{context.draftOrders.entry.resource.id}}",
}


def transaction_bundle() -> dict:
    """Shaped like carebundle's output: no ids, urn:uuid references (a FHIR transaction)."""
    pid, prac = "urn:uuid:96baad95-bc36-5844-bc19-86cb1d4022a3", "urn:uuid:20fd4d99-998d-58f3-a37e-9f165f9df6bb"
    obs = lambda code, value, when: {"resourceType": "Observation", "status": "final",  # noqa: E731
                                     "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                                     "subject": {"reference": pid}, "effectiveDateTime": when,
                                     "valueQuantity": {"value": value, "unit": "mg/dL", "system": "http://unitsofmeasure.org",
                                                       "code": "mg/dL"}}
    entries = [
        (pid, {"resourceType": "Patient", "gender": "female", "birthDate": "1970-03-01"}),
        (prac, {"resourceType": "Practitioner", "name": [{"family": "Mocklin"}]}),
        ("urn:uuid:8fa28d90-ba30-55d7-9a22-e529d75cd9ce", {"resourceType": "Encounter", "status": "finished",
                                                            "subject": {"reference": pid}}),
        ("urn:uuid:d23f1077-f7d8-5974-a176-96ddede48c90", obs("2093-3", 213, "2025-01-02")),
        ("urn:uuid:d23f1077-f7d8-5974-a176-96ddede48c91", obs("2085-9", 50, "2025-03-02")),
        ("urn:uuid:d23f1077-f7d8-5974-a176-96ddede48c92", obs("2951-2", 140, "2025-03-02")),
    ]
    return {"resourceType": "Bundle", "type": "transaction",
            "entry": [{"fullUrl": u, "resource": r, "request": {"method": "POST", "url": r["resourceType"]}} for u, r in entries]}


@pytest.fixture
def bundle_file(tmp_path):
    path = tmp_path / "patient.json"
    path.write_text(json.dumps(transaction_bundle()))
    return path


def test_localize_gives_ids_and_rewrites_urn_references():
    resources = localize(transaction_bundle())
    patient = resources[0]
    assert patient["id"] == "96baad95-bc36-5844-bc19-86cb1d4022a3"
    assert resources[3]["subject"] == {"reference": f"Patient/{patient['id']}"}
    p = patient_from_resources(resources)
    assert p.user == "Practitioner/20fd4d99-998d-58f3-a37e-9f165f9df6bb"
    assert encounter_for(p, "encounter-start") == "8fa28d90-ba30-55d7-9a22-e529d75cd9ce"


@pytest.mark.parametrize("hook", HOOKS)
def test_the_context_of_each_of_the_six_hooks_is_accepted_by_our_parser(hook):
    """REQ-1 / HOOK-*: the request fire and check send passes the service's own validation."""
    patient = patient_from_resources(localize(transaction_bundle()))
    context = build_context(hook, patient, now=NOW)
    request = parse_hook_request({"hook": hook, "hookInstance": "h-1", "context": context}, HOOKS[hook])
    assert request.patient_id == patient.id
    if hook in ("order-select", "order-sign"):
        order = context["draftOrders"]["entry"][0]["resource"]
        assert order["status"] == "draft" and order["subject"] == {"reference": f"Patient/{patient.id}"}
        assert order["medicationCodeableConcept"]["coding"][0]["code"] == "5640"  # ibuprofen (RxNorm ingredient)
    if hook == "order-select":  # HOOK-OSEL-4: selections point into draftOrders
        assert context["selections"] == [f"MedicationRequest/{order['id']}"]
    if hook == "appointment-book":  # HOOK-AB-4: a Bundle of proposed Appointments
        assert context["appointments"]["entry"][0]["resource"]["status"] == "proposed"


def test_clinician_only_hooks_get_a_practitioner_user_even_for_a_patient_user():
    patient = Patient("p1", [], user="Patient/p1")
    assert build_context("patient-view", patient, now=NOW)["userId"] == "Patient/p1"  # HOOK-PV-1 allows a patient
    assert build_context("order-sign", patient, now=NOW)["userId"].startswith("Practitioner/")  # HOOK-OSIGN-1


def test_prefetch_is_rendered_with_the_service_templates_and_answered_locally():
    resources = localize(transaction_bundle())
    patient = patient_from_resources(resources)
    context = build_context("patient-view", patient, now=NOW)
    prefetch, left_out = local_prefetch(ASCVD_PREFETCH, context, resources)
    assert prefetch["patient"]["id"] == patient.id
    lipids = prefetch["lipids"]
    assert lipids["resourceType"] == "Bundle" and lipids["type"] == "searchset" and lipids["total"] == 2
    assert [e["resource"]["code"]["coding"][0]["code"] for e in lipids["entry"]] == ["2085-9", "2093-3"]  # _sort=-date
    assert prefetch["user"]["resourceType"] == "Practitioner"  # TOKEN-1 user token
    assert set(left_out) == {"fancy"}  # a 3.0 FHIRPath token: left out (PREFETCH-3), never approximated


def test_a_search_with_no_match_has_no_empty_entry_array():
    prefetch, _ = local_prefetch({"x": "Condition?patient={{context.patientId}}"}, {"userId": "Practitioner/1", "patientId": "p"}, [])
    assert prefetch["x"] == {"resourceType": "Bundle", "type": "searchset", "total": 0}  # GEN-2 / FHIR JSON


def test_draft_order_presets_and_files(tmp_path):
    patient = Patient("p1", [{"resourceType": "Encounter", "id": "e1", "status": "in-progress"}])
    path = tmp_path / "order.json"
    path.write_text(json.dumps({"resourceType": "ServiceRequest", "status": "draft", "intent": "order"}))
    drafts = read_draft_orders("apixaban", index=1) + read_draft_orders(str(path), index=2)
    apixaban, order = (e["resource"] for e in build_context("order-sign", patient, now=NOW, drafts=drafts)["draftOrders"]["entry"])
    assert apixaban["medicationCodeableConcept"]["coding"][0]["code"] == "1364430"
    assert apixaban["encounter"] == {"reference": "Encounter/e1"}  # made out for this patient's encounter
    assert order["resourceType"] == "ServiceRequest" and order["id"] == "draft-2-0"
    with pytest.raises(CliError, match="not a preset"):
        read_draft_orders("no-such-drug", index=3)


def test_plain_text_turns_markdown_detail_into_terminal_text():
    md = ("**Risk: 12%** — model `pce`.\n\n* Diabetes: yes, +0.66\n\n| Input | Value |\n| --- | --- |\n"
          "| Age | 61 years |\n| Total cholesterol | 213 mg/dL |\n\nSee [the guideline](https://x.org/g). *Source:* PCE.")
    text = plain_text(md)
    assert "Risk: 12% — model pce." in text and "- Diabetes: yes, +0.66" in text
    assert "Input              Value" in text and "Total cholesterol  213 mg/dL" in text and "---" not in text
    assert "the guideline <https://x.org/g>" in text and "Source: PCE." in text and "*" not in text


def test_plain_text_shows_escaped_record_text_as_written():
    """Text from the record reaches the Markdown escaped (builders/markdown.literal); the terminal shows
    the original characters, and an escaped pipe does not split a table cell."""
    drug = "ibuprofen_400 (tab) [see](https://evil.example) *x* `y` a|b"
    text = plain_text(f"**Ordered:** {literal(drug)}\n\n| Drug | Note |\n| --- | --- |\n| {literal(drug)} | ok |")
    assert f"Ordered: {drug}" in text and "\\" not in text
    assert text.splitlines()[-1].split("  ")[-1] == "ok"  # two cells, the second one 'ok'


def test_render_result_shows_what_a_clinician_reads():
    card = {"uuid": "c1", "summary": "High bleeding risk", "indicator": "critical", "detail": "**HAS-BLED 4**",
            "source": {"label": "HAS-BLED", "url": "https://doi.org/x"}, "selectionBehavior": "at-most-one",
            "suggestions": [{"label": "Cancel the order", "uuid": "s1", "isRecommended": True,
                             "actions": [{"type": "delete", "description": "Cancel apixaban", "resourceId": "MedicationRequest/d1"}]}],
            "links": [{"label": "Why?", "url": "https://cds/explain/x", "type": "absolute"}],
            "overrideReasons": [{"system": "s", "code": "c", "display": "Benefit outweighs risk"}]}
    text = render_result({"service": "bleed", "hook": "order-sign", "status": 200, "latency_ms": 12.0, "prefetch": ["patient"],
                          "left_out": {}, "response": {"cards": [card]}})
    for expected in ("== bleed (order-sign): HTTP 200 in 12 ms, 1 card", "[CRITICAL] High bleeding risk", "HAS-BLED 4",
                     "suggestions (at-most-one):", "* Cancel the order (recommended)", "delete MedicationRequest/d1: Cancel apixaban",
                     "link (absolute): Why? <https://cds/explain/x>", "override reasons: Benefit outweighs risk"):
        assert expected in text, expected
    error = render_result({"service": "s", "hook": "patient-view", "status": 412, "latency_ms": 3.0, "response":
                           {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found",
                                                                         "diagnostics": "Required prefetch 'patient' is unavailable",
                                                                         "expression": ["prefetch.patient"]}]}})
    assert "HTTP 412" in error and "error: Required prefetch 'patient' is unavailable at prefetch.patient" in error


DISCOVERY = {"services": [
    {"hook": "patient-view", "id": "risk-a", "title": "A", "description": "a", "prefetch": ASCVD_PREFETCH},
    {"hook": "patient-view", "id": "risk-b", "title": "B", "description": "b"},
    {"hook": "order-sign", "id": "orders", "title": "O", "description": "o"},
]}


@responses.activate
def test_fire_posts_to_every_service_answering_the_hook_with_prefetch_from_the_file(bundle_file, capsys):
    responses.get(f"{URL}/cds-services", json=DISCOVERY)
    card = {"uuid": "u", "summary": "Low risk: 2.0%", "indicator": "info", "source": {"label": "PCE"}}
    responses.post(f"{URL}/cds-services/risk-a", json={"cards": [card]})
    responses.post(f"{URL}/cds-services/risk-b", json={"cards": []})
    assert main(["fire", "patient-view", "--patient", str(bundle_file), "--url", URL]) == 0
    out = capsys.readouterr().out
    assert "[INFO] Low risk: 2.0%" in out and "== risk-b (patient-view): HTTP 200" in out and "no cards" in out
    assert "prefetch left out: fancy" in out
    body_a = json.loads(responses.calls[1].request.body)
    assert body_a["hook"] == "patient-view" and set(body_a["prefetch"]) == {"patient", "lipids", "user"}
    assert "prefetch" not in json.loads(responses.calls[2].request.body)  # risk-b declares no prefetch
    assert body_a["hookInstance"] != json.loads(responses.calls[2].request.body)["hookInstance"]  # IDEM-1
    assert "Authorization" not in responses.calls[1].request.headers


@responses.activate
def test_fire_with_a_fhir_server_sends_no_prefetch_and_the_access_token(capsys):
    """PREFETCH-4 / AUTHZ-1: with a patient id the service fetches from fhirServer itself."""
    responses.get(f"{URL}/cds-services", json=DISCOVERY)
    responses.post(f"{URL}/cds-services/risk-a", json={"cards": []})
    code = main(["fire", "patient-view", "--patient", "p-42", "--fhir-server", "https://fhir.example.org/r4",
                 "--fhir-token", "secret-token", "--service", "risk-a", "--url", URL, "--json"])
    assert code == 0
    body = json.loads(responses.calls[1].request.body)
    assert "prefetch" not in body and body["fhirServer"] == "https://fhir.example.org/r4"
    assert body["fhirAuthorization"]["access_token"] == "secret-token" and body["fhirAuthorization"]["patient"] == "p-42"
    assert body["context"]["patientId"] == "p-42"
    assert [r["service"] for r in json.loads(capsys.readouterr().out)] == ["risk-a"]
    assert len(responses.calls) == 2  # --service: risk-b was not called


@responses.activate
def test_fire_signs_each_call_with_the_given_key(tmp_path, bundle_file):
    """SEC-3/4/5: ES384, kid, typ JWT; aud = the endpoint called; a fresh jti per call (SEC-8)."""
    key = ec.generate_private_key(ec.SECP384R1())
    pem = tmp_path / "ehr.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    responses.get(f"{URL}/cds-services", json=DISCOVERY)
    responses.post(f"{URL}/cds-services/risk-a", json={"cards": []})
    responses.post(f"{URL}/cds-services/risk-b", json={"cards": []})
    assert main(["fire", "patient-view", "--patient", str(bundle_file), "--url", URL, "--token-key", str(pem),
                 "--token-iss", "https://ehr.example.org", "--token-kid", "k1", "--token-jku", "https://ehr.example.org/jwks"]) == 0
    seen = []
    for call in responses.calls:
        token = call.request.headers["Authorization"].removeprefix("Bearer ")
        header = jwt.get_unverified_header(token)
        assert header == {"alg": "ES384", "kid": "k1", "typ": "JWT", "jku": "https://ehr.example.org/jwks"}
        claims = jwt.decode(token, key.public_key(), algorithms=["ES384"], audience=call.request.url.rstrip("/"))
        assert claims["iss"] == "https://ehr.example.org" and claims["exp"] - claims["iat"] == 300
        seen.append(claims["jti"])
    assert len(set(seen)) == 3


@responses.activate
def test_fire_reports_a_non_200_answer_and_exits_1(bundle_file, capsys):
    responses.get(f"{URL}/cds-services", json=DISCOVERY)
    responses.post(f"{URL}/cds-services/orders", status=401, headers={"WWW-Authenticate": "Bearer"})
    assert main(["fire", "order-sign", "--patient", str(bundle_file), "--url", URL, "--draft-order", "metformin"]) == 1
    assert "no token was sent: the service requires a signed JWT" in capsys.readouterr().out
    body = json.loads(responses.calls[1].request.body)
    assert body["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"]["coding"][0]["code"] == "6809"


@pytest.mark.parametrize("argv,message", [
    (["fire", "patient-view", "--patient", "/no/such/file.json"], "is not a file"),
    (["fire", "patient-view", "--patient", "p1", "--draft-order", "apixaban", "--fhir-server", "https://f.org"],
     "applies to order-select and order-sign"),
    (["fire", "patient-view", "--patient", "p1", "--fhir-server", "https://f.org", "--token-key", "/no/key.pem",
      "--token-iss", "x"], "cannot read the key file"),
    (["fire", "patient-view", "--patient", "p1", "--fhir-server", "https://f.org", "--token", "t", "--token-key", "k"],
     "not both"),
])
def test_fire_input_errors_are_one_line_and_exit_2(argv, message, capsys):
    assert main(argv + ["--url", URL]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@responses.activate
def test_fire_when_no_service_answers_the_hook(bundle_file, capsys):
    responses.get(f"{URL}/cds-services", json=DISCOVERY)
    assert main(["fire", "encounter-start", "--patient", str(bundle_file), "--url", URL]) == 2
    assert "no service answering the 'encounter-start' hook" in capsys.readouterr().err


DISCHARGE = {"services": [{"hook": "encounter-discharge", "id": "post-mi", "title": "P", "description": "p",
                           "prefetch": {"encounter": "Encounter/{{context.encounterId}}"}}]}


@responses.activate
def test_fire_encounter_chooses_the_encounter_and_a_no_card_answer_says_why(capsys):
    """demo-02 has a finished clinic visit and an inpatient stay: the stay by default (the discharge is about it),
    the visit with --encounter; the request asks why when there is no card, and the answer's reason is printed."""
    from cds_service.ehr.patients import DemoPatients, encounter_list

    visit = next(e for e, cls, _ in encounter_list(DemoPatients().patient("demo-02").resources) if cls == "AMB")
    reason = {"kind": "outside-population", "text": "outside the population 'discharged after an acute myocardial infarction': "
                                                    "Acute myocardial infarction this stay is no (the service needs yes)"}
    responses.get(f"{URL}/cds-services", json=DISCHARGE)
    responses.post(f"{URL}/cds-services/post-mi", json={"cards": [], "extension": {NO_CARD_REASON: {"reasons": [reason]}}})
    assert main(["fire", "encounter-discharge", "--patient", "demo-02", "--url", URL]) == 0
    default = json.loads(responses.calls[1].request.body)
    assert default["context"]["encounterId"] == "demo-02-admission"
    assert default["prefetch"]["encounter"]["id"] == "demo-02-admission"
    assert default["extension"] == {NO_CARD_REASON: True}
    capsys.readouterr()
    assert main(["fire", "encounter-discharge", "--patient", "demo-02", "--encounter", visit, "--url", URL]) == 0
    chosen = json.loads(responses.calls[3].request.body)
    assert chosen["context"]["encounterId"] == visit and chosen["prefetch"]["encounter"]["id"] == visit
    out = capsys.readouterr().out
    assert f"   no cards, because:\n   - {reason['text']}\n" in out
    assert f"   encounter sent: {visit} (AMB, finished); other encounters: demo-02-admission (IMP, in-progress) " \
           "(choose one with --encounter ID)" in out


def test_fire_encounter_must_be_one_of_the_patients(capsys):
    assert main(["fire", "encounter-discharge", "--patient", "demo-02", "--encounter", "enc-9", "--url", URL]) == 2
    err = capsys.readouterr().err
    assert "--encounter enc-9: not an Encounter of this patient (on record: " in err and "demo-02-admission (IMP, in-progress)" in err


def test_a_no_card_answer_without_a_reason_says_so():
    out = render_result({"service": "s", "hook": "patient-view", "status": 200, "latency_ms": 3, "response": {"cards": []}})
    assert "no cards: the service has no advice for this patient (it gave no reason)" in out
