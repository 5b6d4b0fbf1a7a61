"""`/openapi.json`: a valid OpenAPI 3.1 document whose paths are exactly the app's
routes, and whose schemas accept what the service really sends and receives."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from cds_service.http import openapi
from cds_service.http.openapi import build_openapi
from cds_testing.fhir_factory import ascvd_prefetch, hook_request
from cds_testing.paths import SPEC_EXAMPLES
from hooks.catalog import FEEDBACK_OUTCOMES, INDICATORS, LINK_TYPES, SELECTION_BEHAVIORS, SUMMARY_MAX


@pytest.fixture
def doc(client):
    resp = client.get("/openapi.json")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    return resp.get_json()


def _validator(doc: dict, name: str) -> Draft202012Validator:
    """Validate against components.schemas[name], resolving $refs inside the document."""
    return Draft202012Validator({**doc, "$ref": f"#/components/schemas/{name}"})


def _documented(doc: dict) -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}


def _routes(app) -> set[tuple[str, str]]:
    """(path, method) for every rule of the url map, with <service_id> expanded to each loaded service."""
    services = sorted(app.extensions["cds"].services)
    out = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if rule.rule.startswith("/cds-services/<service_id>"):
                out |= {(rule.rule.replace("<service_id>", sid), method) for sid in services}
            else:
                out.add((re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule), method))
    return out


def test_the_document_is_valid_openapi_3_1(doc):
    validate(doc)
    assert doc["openapi"].startswith("3.1")


def test_documented_paths_are_exactly_the_routes(app, doc):
    """No drift: every route is documented, and nothing documented is missing from the url map."""
    assert _documented(doc) == _routes(app)


def test_each_loaded_service_has_its_own_call_and_feedback_path(app, doc):
    for sid, group in app.extensions["cds"].services.items():
        call = doc["paths"][f"/cds-services/{sid}"]["post"]
        assert set(call["responses"]) >= {"200", "400", "401", "412", "500"}
        for bound in group:
            request = doc["components"]["schemas"][f"Request_{sid}_{bound.definition.hook}"]
            assert request["properties"]["hook"] == {"const": bound.definition.hook}
            assert set(request["properties"]["prefetch"]["properties"]) == set(bound.definition.prefetch)
        assert f"/cds-services/{sid}/feedback" in doc["paths"]


def test_operational_endpoints_are_documented(doc):
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/cds-services"):
        assert "get" in doc["paths"][path]
    assert set(doc["paths"]["/readyz"]["get"]["responses"]) == {"200", "503"}


def test_other_routes_carry_their_views_docstring(app, doc):
    """Pages this module has no schema for (the UI's) are documented from their view's docstring."""
    import inspect

    ours = {"/healthz", "/readyz", "/metrics", "/openapi.json"}
    by_endpoint = {op["operationId"].rsplit("-", 1)[0]: op for path, ops in doc["paths"].items()
                   if not path.startswith("/cds-services") and path not in ours for op in ops.values()}
    for endpoint, op in by_endpoint.items():
        first = (inspect.getdoc(app.view_functions[endpoint]) or "").split("\n\n")[0].replace("\n", " ").strip()
        assert op["summary"] == (first or f"{endpoint} (no description)")


def test_real_answers_validate_against_the_documented_schemas(client, doc):
    discovery = client.get("/cds-services").get_json()
    assert not list(_validator(doc, "DiscoveryResponse").iter_errors(discovery))
    body = hook_request(prefetch=ascvd_prefetch(tc=260, hdl=35, sbp=160, smoker=True))
    assert not list(_validator(doc, "Request_ascvd-10y-risk_patient-view").iter_errors(body))
    resp = client.post("/cds-services/ascvd-10y-risk", json=body)
    assert resp.status_code == 200 and resp.get_json()["cards"]
    assert not list(_validator(doc, "CdsResponse").iter_errors(resp.get_json()))
    missing = client.post("/cds-services/ascvd-10y-risk", json=hook_request())
    assert missing.status_code == 412 and not list(_validator(doc, "OperationOutcome").iter_errors(missing.get_json()))


def test_the_schemas_refuse_what_the_spec_forbids(doc):
    card = {"summary": "x" * 140, "indicator": "hard-stop", "source": {"label": "L"},
            "suggestions": [{"label": "s"}]}
    errors = {e.validator for e in _validator(doc, "Card").iter_errors(card)}
    assert {"maxLength", "enum", "dependentRequired"} <= errors  # CARD-2, CARD-3, CARD-4
    assert list(_validator(doc, "Request_ascvd-10y-risk_patient-view").iter_errors(
        {"hook": "patient-view", "hookInstance": "h", "context": {"userId": "Practitioner/1", "patientId": "p"},
         "fhirAuthorization": {"access_token": "t", "token_type": "Bearer"}}))  # cds-r-1: needs fhirServer
    delete_with_resource = {"type": "delete", "description": "d", "resourceId": "X/1", "resource": {"resourceType": "X"}}
    assert list(_validator(doc, "Action").iter_errors(delete_with_resource))  # ACT-1 / cds-resp-2


def test_card_limits_and_value_sets_come_from_the_catalog(doc):
    """hooks/catalog.py is the one home of the CDS Hooks limits and value sets: the document states
    exactly those, and openapi.py spells none of them itself."""
    schemas = doc["components"]["schemas"]
    card = schemas["Card"]["properties"]
    assert card["summary"]["maxLength"] == SUMMARY_MAX and str(SUMMARY_MAX + 1) in card["summary"]["description"]
    assert card["indicator"]["enum"] == list(INDICATORS)
    assert card["selectionBehavior"]["enum"] == list(SELECTION_BEHAVIORS)
    assert schemas["Link"]["properties"]["type"]["enum"] == list(LINK_TYPES)
    assert schemas["FeedbackItem"]["properties"]["outcome"]["enum"] == list(FEEDBACK_OUTCOMES)
    longest = {"summary": "x" * SUMMARY_MAX, "indicator": INDICATORS[-1], "source": {"label": "L"}}
    assert not list(_validator(doc, "Card").iter_errors(longest))
    source = Path(openapi.__file__).read_text()
    enums = re.findall(r'"enum":\s*\[([^\]]*)\]', source)  # value sets written out in the module
    value_sets = (INDICATORS, SELECTION_BEHAVIORS, LINK_TYPES, FEEDBACK_OUTCOMES)
    spelled = [e for e in enums if any(set(re.findall(r'"([^"]+)"', e)) <= set(vs) for vs in value_sets)]
    spelled += re.findall(rf"\b(?:{SUMMARY_MAX}|{SUMMARY_MAX + 1})\b", source)
    assert not spelled, f"openapi.py spells catalog values itself: {spelled}"


@pytest.mark.parametrize("name", ["feedback-accepted.json", "feedback-overridden-no-reason.json",
                                  "feedback-overridden-with-reason.json"])
def test_the_specs_feedback_examples_fit_the_feedback_schema(doc, name):
    example = json.loads((SPEC_EXAMPLES / "spec-2.0.1" / name).read_text())
    assert not list(_validator(doc, "FeedbackRequest").iter_errors(example))


def test_security_is_documented_only_when_required(make_app):
    secured = build_openapi(make_app(auth_required=True, clients=[{"iss": "https://ehr.example.org",
                                                                     "jwks_url": "https://ehr.example.org/jwks"}]))
    assert secured["components"]["securitySchemes"]["ehrJwt"]["bearerFormat"] == "JWT"
    assert secured["paths"]["/cds-services"]["get"]["security"] == [{"ehrJwt": []}]
    assert secured["servers"] == [{"url": "https://cds.example.org"}]
    open_doc = build_openapi(make_app())
    assert "securitySchemes" not in open_doc["components"] and open_doc["paths"]["/cds-services"]["get"]["security"] == []
