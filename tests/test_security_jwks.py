"""SEC-7: where keys come from. The Verifier is driven directly with a fake clock, so the cache and
the rate-limited refresh are checked without waiting."""
from __future__ import annotations

import json

import pytest
import requests
import responses
from jwt.algorithms import ECAlgorithm

from cds_service.config import Settings
from cds_service.errors import AuthError
from cds_service.security.jwt_verifier import Verifier
from cds_service.storage.db import make_engine
from cds_testing import security_support as s
from cds_testing.clock import FakeClock
from cds_testing.paths import SPEC_EXAMPLES


@pytest.fixture
def clock():
    return FakeClock()  # starts at the real time: the test tokens are signed "now"


@pytest.fixture
def verifier_for(tmp_path, clock):
    def build(**overrides) -> Verifier:
        settings = Settings.from_mapping(s.auth_settings(tmp_path, **overrides))
        return Verifier.from_settings(settings, make_engine(settings.database_url), clock=clock)

    return build


def test_sec7_unknown_kid_triggers_one_rate_limited_refresh(verifier_for, clock):
    """SEC-7: an unknown kid re-fetches the set, but at most once per jwks_refresh_min_s per URL."""
    with responses.RequestsMock() as mock:
        fetch = mock.get(s.SANDBOX_JKU, json=s.jwks(s.sandbox_key()))
        v = verifier_for()
        v.verify(s.sandbox_token(s.DISCOVERY_AUD, now=clock.t), [s.DISCOVERY_AUD])
        assert fetch.call_count == 1
        rogue = s.sign(s.sandbox_claims(s.DISCOVERY_AUD, now=clock.t), s.ec_key("unknown-kid"), jku=s.SANDBOX_JKU)
        for _ in range(5):  # a flood of unknown kids within the minute: no request at all
            with pytest.raises(AuthError, match="kid unknown"):
                v.verify(rogue, [s.DISCOVERY_AUD])
        assert fetch.call_count == 1
        clock.advance(61)
        for _ in range(5):  # after the interval: exactly one refresh for the whole burst
            with pytest.raises(AuthError, match="kid unknown"):
                v.verify(s.sign(s.sandbox_claims(s.DISCOVERY_AUD, now=clock.t), s.ec_key("unknown-kid"),
                                jku=s.SANDBOX_JKU), [s.DISCOVERY_AUD])
        assert fetch.call_count == 2


def test_sec7_key_rotation_is_picked_up_by_the_refresh(verifier_for, clock):
    """SEC-7 ([3.0-ballot] clients rotate keys): a new kid published later is found after a refresh."""
    new_key = s.ec_key("rotated-2026", "ES384")
    with responses.RequestsMock() as mock:
        mock.get(s.SANDBOX_JKU, json=s.jwks(s.sandbox_key()))
        v = verifier_for()
        v.verify(s.sandbox_token(s.DISCOVERY_AUD, now=clock.t), [s.DISCOVERY_AUD])
        mock.replace(responses.GET, s.SANDBOX_JKU, json=s.jwks(s.sandbox_key(), new_key))
        clock.advance(61)
        identity = v.verify(s.sign(s.sandbox_claims(s.DISCOVERY_AUD, now=clock.t), new_key, jku=s.SANDBOX_JKU),
                            [s.DISCOVERY_AUD])
        assert identity.iss == s.SANDBOX_ISS and identity.authenticated


def test_sec7_cached_set_is_refetched_after_max_age_and_kept_when_the_refetch_fails(verifier_for, clock):
    """SEC-7: a set older than jwks_max_age_s is re-fetched; if that fails the old keys still serve."""
    with responses.RequestsMock() as mock:
        fetch = mock.get(s.SANDBOX_JKU, json=s.jwks(s.sandbox_key()))
        v = verifier_for()
        v.verify(s.sandbox_token(s.DISCOVERY_AUD, now=clock.t), [s.DISCOVERY_AUD])
        clock.advance(3601)
        mock.replace(responses.GET, s.SANDBOX_JKU, body=requests.ConnectionError("down"))
        v.verify(s.sandbox_token(s.DISCOVERY_AUD, now=clock.t), [s.DISCOVERY_AUD])
        assert len(mock.calls) == 2 and fetch.call_count == 1


@pytest.mark.parametrize("answer", [
    {"status": 302, "headers": {"Location": "https://evil.example/jwks.json"}},
    {"status": 500, "json": {"keys": []}},
    {"status": 200, "body": "not json"},
    {"status": 200, "json": {"no": "keys"}},
    {"status": 200, "body": json.dumps({"keys": [{"kty": "oct", "kid": s.SANDBOX_KID, "k": "c2VjcmV0"}]})},
    {"status": 200, "body": " " * (300 * 1024) + json.dumps(s.jwks(s.sandbox_key()))},  # valid but oversized
])
def test_sec7_bad_jwks_answers_are_refused_and_redirects_not_followed(verifier_for, clock, answer):
    """SEC-7: no redirect is followed (it could leave the allow-list); errors, non-JSON, symmetric keys
    and oversized sets give no key."""
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, s.SANDBOX_JKU, **answer)
        v = verifier_for()
        with pytest.raises(AuthError, match="kid unknown"):
            v.verify(s.sandbox_token(s.DISCOVERY_AUD, now=clock.t), [s.DISCOVERY_AUD])
        assert [c.request.url for c in mock.calls] == [s.SANDBOX_JKU]


def test_sec7_jwks_request_has_a_timeout_and_no_redirects(verifier_for, clock, monkeypatch):
    """Guide: a timeout on every outbound call; a slow JWKS host cannot hang a worker."""
    seen = {}

    def fake_get(self, url, **kwargs):
        seen.update(kwargs, url=url)
        raise requests.Timeout("slow")

    monkeypatch.setattr(requests.Session, "get", fake_get)
    v = verifier_for(jwks_timeout_s=1.5)
    with pytest.raises(AuthError):
        v.verify(s.sandbox_token(s.DISCOVERY_AUD, now=clock.t), [s.DISCOVERY_AUD])
    assert seen["url"] == s.SANDBOX_JKU and seen["timeout"] == (1.5, 1.5) and seen["allow_redirects"] is False


def test_sec7_configured_keys_are_used_without_any_request(verifier_for, clock):
    """SEC-7: keys exchanged out of band (inline jwks) verify without fetching; the token's jku,
    though allow-listed, is not needed."""
    clients = [{"iss": s.SANDBOX_ISS, "jwks": s.jwks(s.sandbox_key()), "jku": [s.SANDBOX_JKU]}]
    with responses.RequestsMock() as mock:
        v = verifier_for(clients=clients)
        assert v.verify(s.sandbox_token(s.DISCOVERY_AUD, now=clock.t), [s.DISCOVERY_AUD]).authenticated
        assert len(mock.calls) == 0


def test_sec7_jwks_file_and_private_members_are_dropped(verifier_for, clock, tmp_path):
    """SEC-7: `jwks_file` (as the EHR simulator's demo client uses); a private `d` in the file is ignored."""
    jwk = json.loads(ECAlgorithm.to_jwk(s.sandbox_key().private))  # a private JWK, as a careless operator might
    jwk.update(kid=s.SANDBOX_KID, use="sig", alg="ES384")
    path = tmp_path / "demo-jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    settings = Settings.from_mapping(s.auth_settings(tmp_path, clients=[{"iss": s.SANDBOX_ISS, "jwks_file": str(path)}]))
    assert "d" not in settings.clients[0].static_keys[0]
    with responses.RequestsMock():
        v = verifier_for(clients=[{"iss": s.SANDBOX_ISS, "jwks_file": str(path)}])
        assert v.verify(s.sign(s.sandbox_claims(s.DISCOVERY_AUD, now=clock.t), s.sandbox_key()),
                        [s.DISCOVERY_AUD]).iss == s.SANDBOX_ISS


def test_sec7_real_sandbox_jwks_refuses_a_token_signed_with_another_key(verifier_for, clock):
    """SEC-7: with the Sandbox's published JWKS configured, a token with its kid but our key fails
    the signature check (we do not hold the Sandbox's private key, and neither does a forger)."""
    published = json.loads((SPEC_EXAMPLES / "cds-hooks-sandbox" / "jwks.json").read_text())
    with responses.RequestsMock() as mock:
        v = verifier_for(clients=[{"iss": s.SANDBOX_ISS, "jwks": published, "jku": [s.SANDBOX_JKU]}])
        with pytest.raises(AuthError, match="signature"):
            v.verify(s.sandbox_token(s.DISCOVERY_AUD, now=clock.t), [s.DISCOVERY_AUD])
        assert len(mock.calls) == 0


def test_sec9_the_spec_example_token_verifies_its_signature_but_its_lifetime_is_refused(verifier_for, clock):
    """SEC-3..9 on the spec's own example: its ES384 signature is valid with the example JWKS, but it
    lives 3.5 years (exp - iat = 111287890 s), so it is refused even at a time inside that window."""
    token = (SPEC_EXAMPLES / "spec-2.0.1" / "jwt-authorization-header.txt").read_text().split("Bearer", 1)[1].strip()
    jwks = json.loads((SPEC_EXAMPLES / "spec-2.0.1" / "jwks-public.json").read_text())
    payload = json.loads((SPEC_EXAMPLES / "spec-2.0.1" / "jwt-payload.json").read_text())
    clients = [{"iss": payload["iss"], "jwks": jwks, "jku": ["https://fhir-ehr.example.com/jwk_uri"]}]
    clock.t = payload["iat"] + 100  # a moment inside the example's validity window
    v = verifier_for(clients=clients)
    with pytest.raises(AuthError, match="lifetime"):
        v.verify(token, [payload["aud"]])
    with pytest.raises(AuthError, match="aud"):
        v.verify(token, [s.SERVICE_AUD])


def test_sec6_rsa_key_under_2048_bits_is_refused(verifier_for, clock):
    """SEC-6: a correctly signed RS384 token is refused when the client's key is only 1024 bits."""
    import warnings

    weak = s.rsa_key("weak-1024", "RS384", 1024)
    v = verifier_for(clients=[{"iss": "https://ehr.example", "jwks": s.jwks(weak)}])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyjwt warns when *signing* with the weak key
        token = s.sign({**s.sandbox_claims(s.DISCOVERY_AUD, now=clock.t), "iss": "https://ehr.example"}, weak)
    with pytest.raises(AuthError, match="key too weak"):
        v.verify(token, [s.DISCOVERY_AUD])
