"""Prefetch from the request: PREFETCH-3/5/6, TOKEN-1..3 rendering, OperationOutcome values."""
import pytest

from cds_service.errors import InvalidRequest
from cds_service.hook_request import parse_hook_request
from cds_service.prefetch import render_template
from cds_testing.fhir_factory import ascvd_prefetch, bundle, hook_request
from cds_testing.spec_rules import assert_operation_outcome

URL = "/cds-services/ascvd-10y-risk"


def _request(**context):
    return parse_hook_request(hook_request(**context))


def test_token1_context_tokens_are_rendered():
    req = _request(encounterId="e9")
    assert render_template("Observation?patient={{context.patientId}}&encounter={{context.encounterId}}", req) == \
        "Observation?patient=p1&encounter=e9"


def test_token3_user_tokens_derive_from_user_id():
    req = _request(userId="PractitionerRole/123")
    assert render_template("PractitionerRole?_id={{userPractitionerRoleId}}", req) == "PractitionerRole?_id=123"
    assert render_template("{{context.userId}}", req) == "PractitionerRole/123"
    with pytest.raises(InvalidRequest):  # the user is not a Practitioner
        render_template("Practitioner/{{userPractitionerId}}", req)


def test_token_missing_context_value_is_400():
    with pytest.raises(InvalidRequest) as err:
        render_template("Encounter/{{context.encounterId}}", _request())
    assert err.value.expression == "context.encounterId"


def test_prefetch5_required_key_missing_without_fhir_access_is_412(client):
    prefetch = ascvd_prefetch()
    del prefetch["lipids"]
    issue = assert_operation_outcome(client.post(URL, json=hook_request(prefetch=prefetch)), 412)
    assert issue["expression"] == ["prefetch.lipids"]


def test_prefetch5_no_prefetch_at_all_is_412(client):
    assert_operation_outcome(client.post(URL, json=hook_request()), 412)


def test_prefetch6_null_means_known_empty_not_missing(client):
    prefetch = ascvd_prefetch()
    prefetch["conditions"] = None  # the EHR ran the query: no conditions
    prefetch["medications"] = None
    resp = client.post(URL, json=hook_request(prefetch=prefetch))
    assert resp.status_code == 200
    ext = resp.get_json()["cards"][0]["extension"]["org.cdsml.prediction"]
    assert ext["features"]["diabetes"]["value"] == 0.0 and ext["features"]["bp_treated"]["value"] == 0.0


def test_prefetch3_empty_searchset_bundle_is_no_data(client):
    prefetch = ascvd_prefetch()
    prefetch["lipids"] = bundle()
    card = client.post(URL, json=hook_request(prefetch=prefetch)).get_json()["cards"][0]
    assert card["indicator"] == "info" and "Total cholesterol" in card["summary"]


def test_prefetch3_operation_outcome_value_follows_policy_fail(client):
    prefetch = ascvd_prefetch()
    prefetch["lipids"] = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
    issue = assert_operation_outcome(client.post(URL, json=hook_request(prefetch=prefetch)), 412)
    assert "timeout" in issue["diagnostics"]


def test_prefetch3_bundle_containing_operation_outcome_follows_policy(client):
    prefetch = ascvd_prefetch()
    prefetch["bp"] = bundle({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "forbidden"}]})
    assert_operation_outcome(client.post(URL, json=hook_request(prefetch=prefetch)), 412)


def test_prefetch3_warning_outcome_entry_does_not_mean_missing(client):
    prefetch = ascvd_prefetch()
    prefetch["lipids"]["entry"].append({"resource": {"resourceType": "OperationOutcome", "issue": [
        {"severity": "warning", "code": "informational"}]}, "search": {"mode": "outcome"}})
    assert client.post(URL, json=hook_request(prefetch=prefetch)).status_code == 200


def test_prefetch_invalid_patient_resource_is_412(client):
    prefetch = ascvd_prefetch()
    prefetch["patient"] = {"resourceType": "Patient", "id": "p1", "birthDate": "03/01/1970-robot"}
    issue = assert_operation_outcome(client.post(URL, json=hook_request(prefetch=prefetch)), 412)
    assert "robot" not in issue["diagnostics"]  # no patient data echoed


def test_prefetch_wrong_resource_type_for_read_is_412(client):
    prefetch = ascvd_prefetch()
    prefetch["patient"] = {"resourceType": "Practitioner", "id": "p1"}
    assert_operation_outcome(client.post(URL, json=hook_request(prefetch=prefetch)), 412)
