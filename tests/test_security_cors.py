"""CORS-1 with authentication on: a browser EHR (the CDS Hooks Sandbox) must get through the preflight,
which carries no Authorization header, and must be able to read a 401; other origins get nothing."""
from __future__ import annotations

import pytest
import responses

from cds_testing import security_support as s

SANDBOX_ORIGIN = "https://sandbox.cds-hooks.org"


@pytest.fixture
def cors_client(make_app, tmp_path):
    """Auth on (the Sandbox trusted, its JWKS served by `responses`) and the Sandbox's origin allowed."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(s.SANDBOX_JKU, json=s.jwks(s.sandbox_key()))
        yield make_app(**s.auth_settings(tmp_path, cors_origins=[SANDBOX_ORIGIN])).test_client()


@pytest.mark.parametrize("path", ["/cds-services", f"/cds-services/{s.SERVICE_ID}", f"/cds-services/{s.SERVICE_ID}/feedback"])
def test_cors1_preflight_needs_no_token_even_with_auth_required(cors_client, path):
    resp = cors_client.options(path, headers={"Origin": SANDBOX_ORIGIN, "Access-Control-Request-Method": "POST",
                                         "Access-Control-Request-Headers": "authorization,content-type"})
    assert resp.status_code == 204
    assert resp.headers["Access-Control-Allow-Origin"] == SANDBOX_ORIGIN
    assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]


def test_cors1_a_401_is_readable_by_the_allowed_origin_only(cors_client):
    resp = cors_client.get("/cds-services", headers={"Origin": SANDBOX_ORIGIN})
    assert resp.status_code == 401 and resp.headers["Access-Control-Allow-Origin"] == SANDBOX_ORIGIN
    resp = cors_client.get("/cds-services", headers={"Origin": "https://evil.example"})
    assert resp.status_code == 401 and "Access-Control-Allow-Origin" not in resp.headers


def test_cors1_never_wildcard_and_signed_call_from_the_sandbox_origin_succeeds(cors_client):
    resp = cors_client.get("/cds-services", headers={"Origin": SANDBOX_ORIGIN, **s.bearer(s.sandbox_token(s.DISCOVERY_AUD))})
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == SANDBOX_ORIGIN != "*"
    assert resp.headers["Vary"] == "Origin"
