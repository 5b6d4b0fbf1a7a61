"""Outbound trust: a fhirServer that is not allow-listed for the caller gets no
request at all, and the invocation behaves as if no FHIR access was given."""
from __future__ import annotations

import re
import socket

import pytest
import responses

from cds_service.config import Settings
from cds_service.security.identity import ANONYMOUS, ClientIdentity
from cds_service.security.outbound import fhir_server_allowed, guard_fetcher_factory, normalize_base
from cds_testing import security_support as s
from cds_testing.fhir_factory import hook_request

ACCESS_TOKEN = "eyFHIR-ACCESS-TOKEN-must-never-travel"


def fhir_call_body(server: str) -> dict:
    """A patient-view call with NO prefetch: everything would have to be fetched from `server`."""
    body = hook_request()
    body["fhirServer"] = server
    body["fhirAuthorization"] = {"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 300,
                                 "scope": "patient/*.read", "subject": "cds-service"}
    return body


@pytest.fixture
def no_sockets(monkeypatch):
    """Every TCP connection attempt is recorded and refused."""
    attempts = []

    def refuse(address, *args, **kwargs):
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


@pytest.mark.parametrize("server", [
    "https://attacker.example/fhir",                       # not on any list
    "https://fhir.epic-hospital.example/interconnect-fhir/api/FHIR/R4",  # Epic's server, but the caller is the Sandbox
    "https://launch.smarthealthit.org/v/r4/fhir/../../evil",  # path escape
    "https://evil@launch.smarthealthit.org/v/r4/fhir",     # user info
    "http://launch.smarthealthit.org/v/r4/fhir",            # plain http: the token would travel in clear (REQ-3)
])
def test_non_allow_listed_fhir_server_gets_zero_connections_and_412(make_app, tmp_path, no_sockets, server):
    """PREFETCH-5: zero outbound connections (socket level and HTTP level), then
    412 because the required prefetch is neither sent nor obtainable."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as jwks_and_fhir:
        jwks_and_fhir.get(s.SANDBOX_JKU, json=s.jwks(s.sandbox_key()))
        client = make_app(**s.auth_settings(tmp_path)).test_client()
        resp = client.post(f"/cds-services/{s.SERVICE_ID}", json=fhir_call_body(server),
                           headers=s.bearer(s.sandbox_token(s.SERVICE_AUD)))
        assert [c.request.url for c in jwks_and_fhir.calls] == [s.SANDBOX_JKU]  # the JWKS only, no FHIR GET
    assert no_sockets == []
    assert resp.status_code == 412
    assert resp.get_json()["resourceType"] == "OperationOutcome"
    assert ACCESS_TOKEN.encode() not in resp.data


def test_allow_listed_fhir_server_is_called_positive_control(make_app, tmp_path):
    """The control for the test above: the same request naming the caller's allow-listed server does
    reach it (so the zero above is the allow-list's doing, not a fetcher that never fetches)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(s.SANDBOX_JKU, json=s.jwks(s.sandbox_key()))
        fhir = mock.get(re.compile(re.escape(s.SANDBOX_FHIR) + r"/.*"), status=503)
        client = make_app(**s.auth_settings(tmp_path, fhir_retries=0)).test_client()
        resp = client.post(f"/cds-services/{s.SERVICE_ID}", json=fhir_call_body(s.SANDBOX_FHIR),
                           headers=s.bearer(s.sandbox_token(s.SERVICE_AUD)))
    assert fhir.call_count > 0
    assert all(c.request.headers.get("Authorization") == f"Bearer {ACCESS_TOKEN}"
               for c in mock.calls if c.request.url.startswith(s.SANDBOX_FHIR))
    assert resp.status_code == 412  # the server answered 503: still unobtainable


def test_guard_refuses_before_the_factory_is_called():
    """Defence in depth in create_app: the wrapped factory is not even called for a foreign server."""
    called = []
    settings = Settings.from_mapping({"clients": s.client_config()})
    guarded = guard_fetcher_factory(settings, lambda req, ident, deadline=None: called.append(req) or "fetcher")
    sandbox = ClientIdentity(iss=s.SANDBOX_ISS, fhir_servers=(s.SANDBOX_FHIR,), authenticated=True)

    class Req:
        hook_instance = "h"

        def __init__(self, server):
            self.fhir_server = server

    assert guarded(Req("https://attacker.example/fhir"), sandbox) is None and called == []
    assert guarded(Req(s.SANDBOX_FHIR), sandbox) == "fetcher" and len(called) == 1
    assert guard_fetcher_factory(settings, guarded) is guarded  # not wrapped twice


@pytest.mark.parametrize("url, allowed", [
    ("https://launch.smarthealthit.org/v/r4/fhir", True),
    ("https://LAUNCH.smarthealthit.org:443/v/r4/fhir/", True),
    ("https://launch.smarthealthit.org/v/r4/fhir/Patient", False),
    ("https://launch.smarthealthit.org/v/r4", False),
    ("https://launch.smarthealthit.org:80/v/r4/fhir", False),   # port 80 is not https's default
    ("https://launch.smarthealthit.org:8443/v/r4/fhir", False),
    ("https://launch.smarthealthit.org:bad/v/r4/fhir", False),  # malformed port: refused, not a crash
    ("https://launch.smarthealthit.org/v/r4/fhir?x=1", False),
    ("https://evil@launch.smarthealthit.org/v/r4/fhir", False),
    ("http://launch.smarthealthit.org/v/r4/fhir", False),
    ("ftp://launch.smarthealthit.org/v/r4/fhir", False),
    ("", False),
    (None, False),
])
def test_fhir_server_allow_list_matching(url, allowed):
    settings = Settings.from_mapping({})
    identity = ClientIdentity(iss=s.SANDBOX_ISS, fhir_servers=(s.SANDBOX_FHIR,), authenticated=True)
    assert fhir_server_allowed(settings, identity, url) is allowed


def test_plain_http_only_with_the_development_setting_and_anonymous_uses_settings_list():
    """REQ-3: http only with fhir_allow_http; with auth off the settings' own list applies."""
    settings = Settings.from_mapping({"fhir_allow_http": True, "fhir_servers": ["http://127.0.0.1:8081/fhir"]})
    assert fhir_server_allowed(settings, ANONYMOUS, "http://127.0.0.1:8081/fhir")
    assert not fhir_server_allowed(Settings.from_mapping({"fhir_servers": ["http://127.0.0.1:8081/fhir"]}), ANONYMOUS,
                                   "http://127.0.0.1:8081/fhir")
    assert not fhir_server_allowed(settings, ANONYMOUS, s.SANDBOX_FHIR)
    assert normalize_base("HTTPS://Fhir.Example.org:443/r4/") == "https://fhir.example.org/r4"
