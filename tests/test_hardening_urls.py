"""Server-supplied URLs are normalised before they are trusted and the
checked URL is the one requested; SMART discovery documents are validated, cached and rate-limited."""
from __future__ import annotations

import pytest
import responses
from responses import matchers
from sqlalchemy import func, select

from cds_service.config import Settings
from cds_service.security.identity import ClientIdentity
from cds_service.security.outbound import fhir_server_allowed
from cds_service.storage import db
from cds_testing.apps import written_engine
from fhir_adapters.client import FhirClient
from fhir_adapters.urls import normalize_url, remove_dot_segments

EHR = "https://ehr.example.org"
FHIR_A = f"{EHR}/fhirA"


def _bundle(*ids, next_url=None):
    b = {"resourceType": "Bundle", "type": "searchset",
         "entry": [{"resource": {"resourceType": "Observation", "id": i, "status": "final"}} for i in ids]}
    if next_url:
        b["link"] = [{"relation": "next", "url": next_url}]
    return b


@pytest.mark.parametrize("link", [f"{FHIR_A}/../tenantB/Observation?page=2",
                                  f"{FHIR_A}/%2e%2e/tenantB/Observation?page=2",
                                  f"{FHIR_A}/%2E%2E/tenantB/Observation?page=2",
                                  f"{FHIR_A}/Observation/../../tenantB/Observation?page=2",
                                  "../tenantB/Observation?page=2",
                                  f"{FHIR_A}%2f..%2ftenantB/Observation?page=2",
                                  f"{FHIR_A}/Observation\\..\\..\\tenantB?page=2"])
def test_a_next_link_with_dot_segments_cannot_leave_the_base_path(link):
    """`…/fhirA/../tenantB/…` used to pass the raw prefix check, then the HTTP client removed the dot
    segments and sent tenant A's token to tenant B. Now: no second request, the result is incomplete."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{FHIR_A}/Observation", json=_bundle("o1", next_url=link))
        result = FhirClient(FHIR_A, token="tenant-a-token").fetch("Observation?patient=p1")
        assert [r["id"] for r in result.resources] == ["o1"] and result.incomplete
        assert len(mock.calls) == 1


def test_a_next_link_is_requested_exactly_as_checked():
    """A link that stays on the server after normalisation is requested in its normalised form."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{FHIR_A}/Observation", json=_bundle("o1", next_url="HTTPS://EHR.example.org:443/fhirA/x/./../Observation?page=%7e2"),
                 match=[matchers.query_param_matcher({"patient": "Patient/p1"})])
        mock.get(f"{FHIR_A}/Observation", json=_bundle("o2"), match=[matchers.query_param_matcher({"page": "~2"})])
        result = FhirClient(FHIR_A, token="t").fetch("Observation?patient=p1")
        assert [r["id"] for r in result.resources] == ["o1", "o2"] and result.incomplete is None
        assert mock.calls[1].request.url == f"{FHIR_A}/Observation?page=~2"


@pytest.mark.parametrize("url, expected", [
    ("https://EHR.Example.org:443/a/./b/../c?x=%7e#frag", "https://ehr.example.org/a/c?x=~"),
    ("http://ehr:80/%41%2b", "http://ehr/A%2B"),
    ("https://ehr/../../x", "https://ehr/x"),
])
def test_normalisation_rfc3986(url, expected):
    assert normalize_url(url) == expected


@pytest.mark.parametrize("url", ["https://ehr/a\r\nb", "https://ehr/a b", "https://u@ehr/", "ftp://ehr/",
                                 "https://ehr/a%2Fb", "https://ehr/%zz", "https://ehr/é"])
def test_urls_that_cannot_be_normalised_safely_are_refused(url):
    with pytest.raises(ValueError):
        normalize_url(url)


def test_remove_dot_segments_examples_of_rfc3986():
    assert remove_dot_segments("/a/b/c/./../../g") == "/a/g"
    assert remove_dot_segments("mid/content=5/../6") == "mid/6"


def test_the_fhir_server_allow_list_compares_normalised_urls():
    settings = Settings.from_mapping({"auth_required": False, "fhir_servers": [FHIR_A]})
    assert fhir_server_allowed(settings, ClientIdentity(), f"{FHIR_A}/x/..")
    assert fhir_server_allowed(settings, ClientIdentity(), "https://EHR.example.org/fhirA/")
    assert not fhir_server_allowed(settings, ClientIdentity(), f"{FHIR_A}/../tenantB")
    assert not fhir_server_allowed(settings, ClientIdentity(), f"{FHIR_A}/%2e%2e/tenantB")


# ---- SMART discovery (item 8) --------------------------------------------------------------------

ISS = "https://ehr.example.org/fhir/r4"
AUTH = "https://auth.example.org"
CONFIG_URL = f"{ISS}/.well-known/smart-configuration"
CLIENT = {"iss": "https://ehr.example.org", "jwks_file": "cds_service/demo/keys/simulator-jwks.json",
          "fhir_servers": [ISS], "smart_client_id": "cds-explain", "smart_auth_origins": [AUTH]}
JSON = {"Accept": "application/json"}


def _config(**changes):
    doc = {"authorization_endpoint": f"{AUTH}/oauth2/authorize", "token_endpoint": f"{AUTH}/oauth2/token",
           "code_challenge_methods_supported": ["S256"]}
    doc.update(changes)
    return doc


def _launch(client, launch="opaque"):
    return client.get("/smart/launch", query_string={"iss": ISS, "launch": launch}, headers=JSON)


@pytest.mark.parametrize("endpoint", [f"{AUTH}/oauth2/authorize\r\nSet-Cookie: x=1", f"{AUTH}/oauth2/ authorize",
                                      f"{AUTH}/oauth2/authoriz\u00e9"])
def test_a_discovery_document_with_crlf_in_an_endpoint_is_502(make_app, endpoint):
    """Was a 500 (the CR/LF reached the redirect's Location header); now a 502 with an OperationOutcome."""
    app = make_app(auth_required=True, clients=[CLIENT])
    with responses.RequestsMock() as mock:
        mock.get(CONFIG_URL, json=_config(authorization_endpoint=endpoint))
        resp = _launch(app.test_client())
    assert resp.status_code == 502
    assert resp.get_json()["resourceType"] == "OperationOutcome"


def test_smart_discovery_is_cached_per_ehr(make_app):
    """Each anonymous /smart/launch hit used to read the EHR's SMART configuration again."""
    app = make_app(auth_required=True, clients=[CLIENT])
    client = app.test_client()
    with responses.RequestsMock() as mock:
        mock.get(CONFIG_URL, json=_config())
        for i in range(5):
            assert _launch(client, f"launch-{i}").status_code == 302
        assert len(mock.calls) == 1


def test_a_failed_discovery_is_remembered_briefly(make_app):
    app = make_app(auth_required=True, clients=[CLIENT])
    client = app.test_client()
    with responses.RequestsMock() as mock:
        mock.get(CONFIG_URL, status=500)
        assert [_launch(client).status_code for _ in range(3)] == [502, 502, 502]
        assert len(mock.calls) == 1


def test_smart_launches_are_rate_limited_per_ehr(make_app):
    """At most `smart_launches_per_minute` launches (and so launch rows) per EHR per process: 429 after."""
    app = make_app(auth_required=True, clients=[CLIENT], smart_launches_per_minute=3)
    client = app.test_client()
    with responses.RequestsMock() as mock:
        mock.get(CONFIG_URL, json=_config())
        statuses = [_launch(client, f"l{i}").status_code for i in range(5)]
    assert statuses == [302, 302, 302, 429, 429]
    with written_engine(app).connect() as conn:
        assert conn.execute(select(func.count()).select_from(db.smart_launches)).scalar() == 3
