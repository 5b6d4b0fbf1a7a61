"""Service invocation requests: REQ-1..4, HOOK-* required context, GEN-5, EXT-3, ERR-2/3/4."""
import copy
import json

import pytest

from cds_testing.fhir_factory import ascvd_prefetch, hook_request
from cds_testing.paths import SPEC_EXAMPLES
from cds_testing.spec_rules import assert_operation_outcome

URL = "/cds-services/ascvd-10y-risk"


def valid_body():
    return hook_request(prefetch=ascvd_prefetch())


def test_req1_valid_request_is_accepted(client):
    assert client.post(URL, json=valid_body()).status_code == 200


def test_req2_malformed_json_is_400(client):
    resp = client.post(URL, data="{not json", content_type="application/json")
    assert_operation_outcome(resp, 400, "$")


def test_req2_body_not_an_object_is_400(client):
    assert_operation_outcome(client.post(URL, json=[1, 2]), 400, "$")


@pytest.mark.parametrize("field", ["hook", "hookInstance", "context"])
def test_req2_missing_required_member_is_400(client, field):
    body = valid_body()
    del body[field]
    assert_operation_outcome(client.post(URL, json=body), 400, field)


def test_req2_hook_not_matching_service_is_400(client):
    body = valid_body()
    body["hook"] = "order-sign"
    assert_operation_outcome(client.post(URL, json=body), 400, "hook")


@pytest.mark.parametrize("field", ["userId", "patientId"])
def test_hook_pv_missing_required_context_field_is_400(client, field):
    """HOOK-PV-1/2: userId and patientId are REQUIRED for patient-view."""
    body = valid_body()
    del body["context"][field]
    assert_operation_outcome(client.post(URL, json=body), 400, f"context.{field}")


def test_hookdef4_userid_must_be_a_relative_reference(client):
    body = valid_body()
    body["context"]["userId"] = "example"
    assert_operation_outcome(client.post(URL, json=body), 400, "context.userId")


def test_req2_fhir_authorization_without_fhir_server_is_400(client):
    """Invariant cds-r-1: fhirServer is REQUIRED whenever fhirAuthorization is present."""
    body = valid_body()
    body["fhirAuthorization"] = {"access_token": "secret-token-value", "token_type": "Bearer", "expires_in": 300,
                                 "scope": "user/Patient.read", "subject": "cds-service"}
    resp = client.post(URL, json=body)
    assert_operation_outcome(resp, 400, "fhirServer")
    assert b"secret-token-value" not in resp.data  # AUTHZ-2


def test_req2_bad_token_type_is_400(client):
    body = valid_body()
    body["fhirServer"] = "https://fhir.example.org"
    body["fhirAuthorization"] = {"access_token": "x", "token_type": "MAC", "expires_in": 300, "scope": "s", "subject": "c"}
    assert_operation_outcome(client.post(URL, json=body), 400, "fhirAuthorization.token_type")


def test_req2_prefetch_value_not_a_resource_is_400(client):
    body = valid_body()
    body["prefetch"]["patient"] = "123"  # SOURCES.md quirk 7: a bare string is not a resource
    assert_operation_outcome(client.post(URL, json=body), 400, "prefetch.patient")


def test_req2_unknown_service_is_404(client):
    assert_operation_outcome(client.post("/cds-services/no-such-service", json=valid_body()), 404)


def test_req2_wrong_method_is_405(client):
    resp = client.get(URL)
    assert_operation_outcome(resp, 405)
    assert "POST" in resp.headers["Allow"]


def test_gen5_ext3_unknown_members_and_extensions_are_ignored(client):
    body = valid_body()
    body["extension"] = {"com.example.timestamp": "2017-11-27T22:13:25Z"}
    body["somethingNew"] = {"a": 1}
    body["context"]["com.example.extra"] = "x"
    baseline = client.post(URL, json=valid_body()).get_json()
    resp = client.post(URL, json=body)
    assert resp.status_code == 200 and resp.get_json() == baseline


def test_req1_spec_example_request_is_parsed(client):
    """The spec's own patient-view request (http fhirServer, extra prefetch key) parses; its data is partial."""
    body = json.loads((SPEC_EXAMPLES / "spec-2.0.1" / "request-patient-view.json").read_text())
    resp = client.post(URL, json=body)
    # It names a fhirServer that is not allow-listed and prefetches none of our keys: 412 (PREFETCH-5).
    issue = assert_operation_outcome(resp, 412)
    assert "prefetch." in issue["expression"][0]
    assert b"some-opaque-fhir-access-token" not in resp.data


def test_err4_unexpected_error_is_500_without_stack_trace(make_app):
    from cds_service.builders import Builder
    from cds_service.pipeline import BoundService

    app = make_app()
    bound = app.extensions["cds"].services["ascvd-10y-risk"][0]

    def explode(ctx):
        raise RuntimeError("boom with patient data John Doe")

    app.extensions["cds"].services["ascvd-10y-risk"] = [BoundService(bound.definition, bound.model, Builder(bound.builder.check, explode))]
    resp = app.test_client().post(URL, json=valid_body())
    issue = assert_operation_outcome(resp, 500)
    assert "John Doe" not in resp.get_data(as_text=True) and "boom" not in issue["diagnostics"]


def test_idem1_same_request_gives_same_cards(client):
    """IDEM-1 [OUR CHOICE]: card and suggestion uuids derive from hookInstance, so a retry is identical."""
    a = client.post(URL, json=valid_body()).get_json()
    b = client.post(URL, json=copy.deepcopy(valid_body())).get_json()
    assert a == b
    other = valid_body()
    other["hookInstance"] = "another-instance"
    c = client.post(URL, json=other).get_json()
    assert a["cards"][0]["uuid"] != c["cards"][0]["uuid"]


@pytest.mark.parametrize("parts", [("hook-1", "ascvd-10y-risk", "risk"), ("", ), ("a/b", "é→ü", ""),
                                   ("urn:uuid:0e6f", "renal-dosing", "suggestion", "MedicationRequest/7", "reduce")])
def test_idem1_card_uuids_are_the_rfc4122_version5_uuids_of_their_key(parts):
    """The ids the cards carry stay those of `uuid.uuid5` over the same namespace and key: stored card
    uuids (issued cards, feedback, card history) keep matching across versions of the service."""
    import uuid

    from cds_service import cards

    assert cards.stable_uuid(*parts) == str(uuid.uuid5(cards._NAMESPACE, "/".join(parts)))
    # the RFC's version and variant bits, for every value of byte 8's low bits (digests differ by the key)
    variants = {cards.stable_uuid(str(i))[19] for i in range(64)}
    assert variants == set("89ab") and {cards.stable_uuid(str(i))[14] for i in range(64)} == {"5"}
