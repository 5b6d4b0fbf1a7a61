"""FhirClient, the one FHIR HTTP choke point (AUTHZ-2/3, PREFETCH-3/7, REQ-3), with `responses`."""
from __future__ import annotations

import json
import logging
import time

import pytest
import requests
import responses
from responses import matchers
from responses.registries import OrderedRegistry

from cds_testing.clock import FakeClock
from fhir_adapters.client import FhirClient, with_patient_references
from fhir_adapters.errors import (
    FhirAuthError,
    FhirConnectionError,
    FhirForbiddenTarget,
    FhirHttpError,
    FhirInvalidResource,
    FhirNotFound,
    FhirOutcomeError,
    FhirTimeout,
)

BASE = "https://ehr.example.org/fhir/R4"
TOKEN = "s3cr3t-access-token-value"


def _bundle(*resources, next_url=None):
    b = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}
    if next_url:
        b["link"] = [{"relation": "next", "url": next_url}]
    return b


def _obs(i):
    return {"resourceType": "Observation", "id": f"o{i}", "status": "final"}


def _client(**kw):
    kw.setdefault("token", TOKEN)
    kw.setdefault("backoff_s", 0)
    return FhirClient(BASE, **kw)


@pytest.fixture
def fhir():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


# ---- headers, references, redirects -----------------------------------------------------------------


def test_authz2_bearer_token_and_fhir_json_accept_header(fhir):
    fhir.get(f"{BASE}/Patient/p1", json={"resourceType": "Patient", "id": "p1"},
             match=[matchers.header_matcher({"Authorization": f"Bearer {TOKEN}", "Accept": "application/fhir+json"})])
    assert _client().fetch("Patient/p1").resources == ({"resourceType": "Patient", "id": "p1"},)


def test_authz5_no_token_means_no_authorization_header(fhir):
    def check(request):
        assert "Authorization" not in request.headers
        return 200, {}, json.dumps(_bundle())
    fhir.add_callback(responses.GET, f"{BASE}/Condition", callback=check)
    assert FhirClient(BASE, token=None).fetch("Condition?patient=p1").resources == ()


def test_reference_searches_are_sent_as_patient_type_and_id(fhir):
    fhir.get(f"{BASE}/Observation", json=_bundle(_obs(1)),
             match=[matchers.query_param_matcher({"patient": "Patient/p1", "code": "http://loinc.org|2093-3"})])
    assert len(_client().fetch("Observation?patient=p1&code=http://loinc.org|2093-3").resources) == 1


def test_with_patient_references_rewrites_bare_ids_only():
    assert with_patient_references("Observation?patient=123&code=x") == "Observation?patient=Patient/123&code=x"
    assert with_patient_references("Condition?subject=a.b-1") == "Condition?subject=Patient/a.b-1"
    assert with_patient_references("Observation?patient=Patient/1") == "Observation?patient=Patient/1"
    assert with_patient_references("Observation?encounter=9") == "Observation?encounter=9"
    assert with_patient_references("Patient/123") == "Patient/123"


def test_redirects_are_not_followed(fhir):
    fhir.get(f"{BASE}/Patient/p1", status=302, headers={"Location": "https://elsewhere.example.com/Patient/p1"})
    with pytest.raises(FhirHttpError) as err:
        _client().fetch("Patient/p1")
    assert err.value.status == 302 and len(fhir.calls) == 1


def test_req3_no_bearer_token_over_plain_http():
    with pytest.raises(FhirForbiddenTarget):
        FhirClient("http://ehr.example.org/fhir", token=TOKEN)
    FhirClient("http://ehr.example.org/fhir", token=TOKEN, allow_http=True).close()
    FhirClient("http://ehr.example.org/fhir", token=None).close()  # nothing secret to leak


def test_absolute_urls_off_the_server_are_refused(fhir):
    with pytest.raises(FhirForbiddenTarget):
        _client().get("https://evil.example.com/fhir/R4/Patient/p1")
    with pytest.raises(FhirForbiddenTarget):
        _client().get("https://ehr.example.org/other/Patient/p1")  # same host, outside the base path
    assert len(fhir.calls) == 0


def test_dot_segments_cannot_climb_out_of_the_base_path(fhir):
    with pytest.raises(FhirForbiddenTarget):
        _client().fetch("Patient/..")  # '..' is a valid FHIR id character sequence
    with pytest.raises(FhirForbiddenTarget):
        _client().fetch("Patient/../../admin?x=1")
    assert len(fhir.calls) == 0


# ---- status → typed errors, timeouts, bad bodies -----------------------------------------------------


@pytest.mark.parametrize("status,error", [(401, FhirAuthError), (403, FhirAuthError), (404, FhirNotFound),
                                          (500, FhirHttpError), (400, FhirHttpError)])
def test_authz3_http_status_maps_to_typed_errors(fhir, status, error):
    fhir.get(f"{BASE}/Patient/p1", status=status, json={"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "security"}]})
    with pytest.raises(error) as err:
        _client().fetch("Patient/p1")
    assert err.value.status == status
    assert str(status) in str(err.value) and "Patient read" in str(err.value)


def test_500_is_not_retried(fhir):
    fhir.get(f"{BASE}/Patient/p1", status=500)
    with pytest.raises(FhirHttpError):
        _client(retries=3).fetch("Patient/p1")
    assert len(fhir.calls) == 1


def test_503_is_retried_then_succeeds():
    with responses.RequestsMock(registry=OrderedRegistry) as fhir:
        fhir.get(f"{BASE}/Patient/p1", status=503)
        fhir.get(f"{BASE}/Patient/p1", status=429)
        fhir.get(f"{BASE}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
        client = _client(retries=2, deadline=time.monotonic() + 5)
        assert client.fetch("Patient/p1").resources[0]["id"] == "p1"
        assert len(fhir.calls) == 3


def test_retries_give_up_after_the_configured_count(fhir):
    fhir.get(f"{BASE}/Patient/p1", status=503)
    with pytest.raises(FhirHttpError) as err:
        _client(retries=2).fetch("Patient/p1")
    assert err.value.status == 503 and len(fhir.calls) == 3


def test_no_retry_when_the_wait_would_cross_the_deadline(fhir):
    fhir.get(f"{BASE}/Patient/p1", status=503, headers={"Retry-After": "30"})
    with pytest.raises(FhirHttpError) as err:
        _client(retries=3, deadline=time.monotonic() + 1.0).fetch("Patient/p1")
    assert err.value.status == 503 and len(fhir.calls) == 1


def test_only_get_is_retried():
    retry = _client()._session.get_adapter(BASE).max_retries
    assert retry.is_retry("GET", 503) and retry.is_retry("GET", 429)
    assert not retry.is_retry("POST", 503) and not retry.is_retry("GET", 500)


def test_connect_timeout(fhir):
    fhir.get(f"{BASE}/Patient/p1", body=requests.exceptions.ConnectTimeout("connect timed out"))
    with pytest.raises(FhirTimeout):
        _client().fetch("Patient/p1")


def test_read_timeout(fhir):
    fhir.get(f"{BASE}/Patient/p1", body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(FhirTimeout):
        _client().fetch("Patient/p1")


def test_connection_refused(fhir):
    fhir.get(f"{BASE}/Patient/p1", body=requests.exceptions.ConnectionError("refused"))
    with pytest.raises(FhirConnectionError):
        _client().fetch("Patient/p1")


def test_timeouts_are_explicit_and_capped_by_the_deadline(fhir):
    seen = {}

    def capture(request):
        seen["timeout"] = request.req_kwargs["timeout"]
        return 200, {}, json.dumps({"resourceType": "Patient", "id": "p1"})
    fhir.add_callback(responses.GET, f"{BASE}/Patient/p1", callback=capture)
    _client(timeout=(3.0, 9.0), deadline=time.monotonic() + 0.5).fetch("Patient/p1")
    t = seen["timeout"].clone()
    assert t.connect_timeout <= 0.5 and t.total <= 0.5  # never beyond the invocation's deadline
    assert t._read == 9.0 and t._connect == 3.0


def test_malformed_json(fhir):
    fhir.get(f"{BASE}/Patient/p1", body="{not json", content_type="application/fhir+json")
    with pytest.raises(FhirInvalidResource):
        _client().fetch("Patient/p1")


def test_json_that_is_not_a_resource(fhir):
    fhir.get(f"{BASE}/Observation", json=[1, 2])
    with pytest.raises(FhirInvalidResource):
        _client().fetch("Observation?patient=p1")


def test_prefetch3_operation_outcome_instead_of_a_bundle(fhir):
    fhir.get(f"{BASE}/Observation", json={"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "too-costly"}]})
    with pytest.raises(FhirOutcomeError, match="too-costly"):
        _client().fetch("Observation?patient=p1")


def test_prefetch3_bundle_containing_an_error_operation_outcome(fhir):
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "forbidden"}]}
    fhir.get(f"{BASE}/Observation", json=_bundle(_obs(1), outcome))
    with pytest.raises(FhirOutcomeError, match="forbidden"):
        _client().fetch("Observation?patient=p1")


def test_prefetch3_warning_outcome_in_a_bundle_is_not_an_error(fhir):
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "warning", "code": "informational"}]}
    body = _bundle(_obs(1))
    body["entry"].append({"resource": outcome, "search": {"mode": "outcome"}})
    fhir.get(f"{BASE}/Observation", json=body)
    assert [r["id"] for r in _client().fetch("Observation?patient=p1").resources] == ["o1"]


# ---- paging (PREFETCH-7) ---------------------------------------------------------------------------


def test_prefetch7_next_links_on_the_same_server_are_followed(fhir):
    fhir.get(f"{BASE}/Observation", json=_bundle(_obs(1), next_url=f"{BASE}/Observation?page=2"),
             match=[matchers.query_param_matcher({"patient": "Patient/p1"})])
    fhir.get(f"{BASE}/Observation", json=_bundle(_obs(2)), match=[matchers.query_param_matcher({"page": "2"})])
    result = _client().fetch("Observation?patient=p1")
    assert [r["id"] for r in result.resources] == ["o1", "o2"] and result.incomplete is None and result.pages == 2


def test_prefetch7_next_link_to_another_host_is_not_requested(fhir):
    """The token must not travel: no request is made to the other host; the result is marked incomplete."""
    fhir.get(f"{BASE}/Observation", json=_bundle(_obs(1), next_url="https://evil.example.com/fhir/R4/Observation?page=2"))
    result = _client().fetch("Observation?patient=p1")
    assert [r["id"] for r in result.resources] == ["o1"]
    assert "another server" in result.incomplete
    assert [c.request.url.split("?")[0] for c in fhir.calls] == [f"{BASE}/Observation"]


@pytest.mark.parametrize("link", ["http://ehr.example.org/fhir/R4/Observation?page=2",        # scheme
                                  "https://ehr.example.org:8443/fhir/R4/Observation?page=2",   # port
                                  "https://ehr.example.org/other/Observation?page=2",          # base path
                                  "https://user@ehr.example.org/fhir/R4/Observation?page=2"])  # user info
def test_prefetch7_next_link_must_keep_scheme_host_port_and_base_path(fhir, link):
    fhir.get(f"{BASE}/Observation", json=_bundle(_obs(1), next_url=link))
    assert _client().fetch("Observation?patient=p1").incomplete
    assert len(fhir.calls) == 1


def test_prefetch7_more_pages_than_the_cap(fhir):
    for page in range(1, 5):
        fhir.get(f"{BASE}/Observation", json=_bundle(_obs(page), next_url=f"{BASE}/Observation?page={page + 1}"),
                 match=[matchers.query_param_matcher({"page": str(page)})])
    result = _client(max_pages=4).fetch("Observation?page=1")
    assert len(fhir.calls) == 4 and len(result.resources) == 4
    assert "more than 4 pages" in result.incomplete


def test_prefetch7_complete_a_prefetched_first_page(fhir):
    fhir.get(f"{BASE}/Observation", json=_bundle(_obs(2)))
    more, incomplete = _client().complete(_bundle(_obs(1), next_url=f"{BASE}/Observation?page=2"))
    assert [r["id"] for r in more] == ["o2"] and incomplete is None


def test_deadline_expiring_mid_paging_stops_before_the_next_request(fhir):
    clock = FakeClock(0.0)  # a monotonic-style clock of its own

    def slow_first_page(request):
        clock.advance(0.25)  # the first page takes longer than the 0.2 s left
        return 200, {}, json.dumps(_bundle(_obs(1), next_url=f"{BASE}/Observation?page=2"))
    fhir.add_callback(responses.GET, f"{BASE}/Observation", callback=slow_first_page,
                      match=[matchers.query_param_matcher({"patient": "Patient/p1"})])
    with pytest.raises(FhirTimeout, match="deadline"):
        _client(deadline=clock.t + 0.2, clock=clock).fetch("Observation?patient=p1")
    assert len(fhir.calls) == 1


def test_a_passed_deadline_sends_nothing(fhir):
    with pytest.raises(FhirTimeout):
        _client(deadline=time.monotonic() - 0.01).fetch("Patient/p1")
    assert len(fhir.calls) == 0


# ---- the token never leaks (AUTHZ-2) -------------------------------------------------------------------


def test_authz2_token_absent_from_repr_errors_and_logs(fhir, caplog):
    caplog.set_level(logging.DEBUG, logger="fhir_adapters")  # create_app elsewhere may have set it to INFO
    fhir.get(f"{BASE}/Patient/p1", status=401)
    fhir.get(f"{BASE}/Patient/p2", body=requests.exceptions.ConnectionError("refused"))
    fhir.get(f"{BASE}/Patient/p3", body=requests.exceptions.ReadTimeout("slow"))
    client = _client()
    texts = [repr(client), repr(client._session.auth), repr(vars(client))]
    for pid in ("p1", "p2", "p3"):
        with pytest.raises(Exception) as err:
            client.fetch(f"Patient/{pid}")
        exc = err.value
        # No chained requests exception either: its prepared request carries the Authorization header.
        assert exc.__context__ is None and exc.__cause__ is None
        texts += [str(exc), repr(exc), repr(vars(exc))]
    texts += [r.getMessage() + repr(vars(r)) for r in caplog.records]
    assert any("fhir_call" in t for t in texts)  # the calls were logged...
    assert not [t for t in texts if TOKEN in t]  # ...without the token
