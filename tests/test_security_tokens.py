"""SEC-2..10 through the HTTP surface: forged and altered tokens are all refused with a bare 401,
and tokens shaped like the CDS Hooks Sandbox's (ES384) and Epic's (RS384 + sub + nbf) are accepted
on discovery, service and feedback calls."""
from __future__ import annotations

import hashlib
import time

import pytest
import responses
import sqlalchemy as sa

from cds_service.storage import db
from cds_testing import security_support as s
from cds_testing.apps import written_engine
from cds_testing.fhir_factory import ascvd_prefetch, hook_request

FEEDBACK_BODY = {"feedback": [{"card": "4e0a3a1e-3283-4575-ab82-028d55fe2719", "outcome": "accepted",
                               "acceptedSuggestions": [{"id": "e56e1945-20b3-4393-8503-a1a20fd73152"}],
                               "outcomeTimestamp": "2021-12-11T10:05:31Z"}]}
EVIL_JKU = "https://evil.example/jwks.json"
OTHER_ISS = "https://untrusted-ehr.example"


@pytest.fixture
def jwks_http():
    """The Sandbox's and Epic's JWK Set URLs, served by `responses` (no network). Any other URL
    requested (e.g. a forged jku) fails the test with a ConnectionError *and* shows up in `calls`."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(s.SANDBOX_JKU, json=s.jwks(s.sandbox_key()))
        mock.get(s.EPIC_JKU, json=s.jwks(s.epic_key()))
        yield mock


@pytest.fixture
def secure_client(make_app, tmp_path, jwks_http):
    def build(**overrides):
        return make_app(**s.auth_settings(tmp_path, **overrides)).test_client()

    return build


def call(client, endpoint: str, headers: dict):
    if endpoint == "discovery":
        return client.get("/cds-services", headers=headers)
    if endpoint == "service":
        return client.post(f"/cds-services/{s.SERVICE_ID}", json=hook_request(prefetch=ascvd_prefetch()), headers=headers)
    for iss in (s.SANDBOX_ISS, s.EPIC_ISS):  # the card was issued to the client that reports on it
        s.issue_card(client.application, FEEDBACK_BODY["feedback"][0]["card"], iss=iss)
    return client.post(f"/cds-services/{s.SERVICE_ID}/feedback", json=FEEDBACK_BODY, headers=headers)


AUD = {"discovery": s.DISCOVERY_AUD, "service": s.SERVICE_AUD, "feedback": s.FEEDBACK_AUD}


# --- valid tokens ------------------------------------------------------------------------------

@pytest.mark.parametrize("endpoint", ["discovery", "service", "feedback"])
def test_sec3_sec6_sandbox_style_es384_token_is_accepted(secure_client, jwks_http, endpoint):
    """SEC-3/4/6/7 and §13: ES384, jku = sandbox JWKS URL, kid 44823f3d-…, exp = iat + 300, no sub."""
    client = secure_client()
    resp = call(client, endpoint, s.bearer(s.sandbox_token(AUD[endpoint])))
    assert resp.status_code == 200, resp.data
    assert [c.request.url for c in jwks_http.calls] == [s.SANDBOX_JKU]


@pytest.mark.parametrize("endpoint", ["discovery", "service", "feedback"])
def test_sec4_epic_style_rs384_token_with_sub_and_nbf_is_accepted(secure_client, jwks_http, endpoint):
    """SEC-4 and §13: RS384, jku on the Epic host, sub = client id, nbf = iat - 300, exp = iat + 900."""
    client = secure_client()
    resp = call(client, endpoint, s.bearer(s.epic_token(AUD[endpoint])))
    assert resp.status_code == 200, resp.data
    assert [c.request.url for c in jwks_http.calls] == [s.EPIC_JKU]


def test_sec5_feedback_accepts_the_service_url_as_aud(secure_client):
    """SEC-5 [OUR CHOICE]: feedback accepts aud …/{id}/feedback and …/{id}."""
    resp = call(secure_client(), "feedback", s.bearer(s.sandbox_token(s.SERVICE_AUD)))
    assert resp.status_code == 200


def test_sec5_aud_as_one_element_array_is_accepted(secure_client):
    resp = call(secure_client(), "service", s.bearer(s.sandbox_token([s.SERVICE_AUD])))
    assert resp.status_code == 200


def test_sec7_jwks_is_cached_across_calls(secure_client, jwks_http):
    """SEC-7: one fetch of the JWK Set serves many calls."""
    client = secure_client()
    for _ in range(3):
        assert call(client, "discovery", s.bearer(s.sandbox_token(s.DISCOVERY_AUD))).status_code == 200
    assert len(jwks_http.calls) == 1


def test_sec6_every_allowed_asymmetric_algorithm_verifies(make_app, tmp_path):
    """SEC-6 [OUR CHOICE]: RS256/384/512, ES256/384/512 and PS384 are accepted with a matching key."""
    keys = [s.rsa_key("k-rs256", "RS256"), s.rsa_key("k-rs384", "RS384"), s.rsa_key("k-rs512", "RS512"),
            s.rsa_key("k-ps384", "PS384"), s.ec_key("k-es256", "ES256", "P-256"), s.ec_key("k-es384", "ES384", "P-384"),
            s.ec_key("k-es512", "ES512", "P-521")]
    clients = [{"iss": "https://ehr.example", "jwks": s.jwks(*keys)}]
    client = make_app(**s.auth_settings(tmp_path, clients=clients)).test_client()
    for key in keys:
        token = s.sign({**s.sandbox_claims(s.DISCOVERY_AUD), "iss": "https://ehr.example"}, key)
        assert client.get("/cds-services", headers=s.bearer(token)).status_code == 200, key.alg


# --- forged and altered tokens: every one is a bare 401 ------------------------------------------

def _hs256_with_public_pem():
    key = s.sandbox_key()
    return s.hmac_token({"alg": "HS256", "typ": "JWT", "kid": key.kid, "jku": s.SANDBOX_JKU},
                        s.sandbox_claims(s.SERVICE_AUD), key.public_pem)


def _hs384_with_public_jwk_json():
    key = s.sandbox_key()
    import json

    return s.hmac_token({"alg": "HS384", "typ": "JWT", "kid": key.kid, "jku": s.SANDBOX_JKU},
                        s.sandbox_claims(s.SERVICE_AUD), json.dumps(key.public_jwk).encode(), hashlib.sha384)


def _alg_none(alg="none"):
    return s.raw_token({"alg": alg, "typ": "JWT", "kid": s.SANDBOX_KID, "jku": s.SANDBOX_JKU},
                       s.sandbox_claims(s.SERVICE_AUD))


def _signature_of_another_token():
    head, body, _ = s.sandbox_token(s.SERVICE_AUD).split(".")
    other_sig = s.sandbox_token(s.DISCOVERY_AUD).split(".")[2]
    return f"{head}.{body}.{other_sig}"


def _alg_confusion_rs384_header_on_ec_key():
    # Header says RS384 but the kid is the Sandbox's EC key: no RSA key with that kid exists.
    return s.sign(s.sandbox_claims(s.SERVICE_AUD), s.rsa_key(s.SANDBOX_KID, "RS384"), jku=s.SANDBOX_JKU)


def _es256_header_with_p384_key_id():
    return s.sign(s.sandbox_claims(s.SERVICE_AUD), s.ec_key(s.SANDBOX_KID + "-256", "ES256", "P-256"),
                  jku=s.SANDBOX_JKU, kid=s.SANDBOX_KID)


FORGERIES = {
    # SEC-6: algorithms
    "alg none": ("alg", lambda: s.bearer(_alg_none())),
    "alg None (case variant)": ("alg", lambda: s.bearer(_alg_none("None"))),
    "HS256 signed with the public key PEM": ("alg", lambda: s.bearer(_hs256_with_public_pem())),
    "HS384 signed with the public JWK": ("alg", lambda: s.bearer(_hs384_with_public_jwk_json())),
    "alg not on the allow-list (ES256K)": ("alg", lambda: s.bearer(s.raw_token(
        {"alg": "ES256K", "typ": "JWT", "kid": s.SANDBOX_KID}, s.sandbox_claims(s.SERVICE_AUD), b"x" * 64))),
    "RS384 header on the EC key's kid": ("kid unknown", lambda: s.bearer(_alg_confusion_rs384_header_on_ec_key())),
    "ES256 signature on the P-384 key's kid": ("kid unknown", lambda: s.bearer(_es256_header_with_p384_key_id())),
    # SEC-5: audience
    "wrong aud (another service)": ("aud", lambda: s.bearer(s.sandbox_token(f"{s.BASE}/cds-services/other-service"))),
    "aud of discovery used on a service": ("aud", lambda: s.bearer(s.sandbox_token(s.DISCOVERY_AUD))),
    "aud on another host": ("aud", lambda: s.bearer(s.sandbox_token(f"https://attacker.example/cds-services/{s.SERVICE_ID}"))),
    "aud with a trailing slash": ("aud", lambda: s.bearer(s.sandbox_token(s.SERVICE_AUD + "/"))),
    "missing aud": ("aud missing", lambda: s.bearer(s.sandbox_token(s.SERVICE_AUD, aud=s.drop()))),
    "aud array without us": ("aud", lambda: s.bearer(s.sandbox_token(s.SERVICE_AUD, aud=["https://a.example", s.DISCOVERY_AUD]))),
    # SEC-9: time
    "expired": ("expired", lambda: s.bearer(s.sandbox_token(s.SERVICE_AUD, now=time.time() - 600))),
    "expired beyond the leeway by 1 s": ("expired", lambda: s.bearer(s.sandbox_token(
        s.SERVICE_AUD, now=time.time() - 362, exp=int(time.time()) - 61))),
    "nbf in the future": ("not yet valid", lambda: s.bearer(s.epic_token(s.SERVICE_AUD, nbf=int(time.time()) + 600))),
    "iat in the future": ("iat in the future", lambda: s.bearer(s.sandbox_token(s.SERVICE_AUD, now=time.time() + 600))),
    "lifetime over one hour": ("lifetime", lambda: s.bearer(s.sandbox_token(s.SERVICE_AUD, exp=int(time.time()) + 3601 + 5))),
    "exp before iat": ("lifetime", lambda: s.bearer(s.sandbox_token(s.SERVICE_AUD, exp=int(time.time()) - 1, iat=int(time.time()) + 30))),
    "exp as a string": ("time claims not numbers", lambda: s.bearer(s.sandbox_token(s.SERVICE_AUD, exp=str(int(time.time()) + 300)))),
    "exp NaN (passes every comparison)": ("time claims not numbers", lambda: s.bearer(s.sandbox_token(
        s.SERVICE_AUD, exp=float("nan")))),
    # SEC-4: required claims
    "missing iss": ("iss missing", lambda: s.bearer(s.sandbox_token(s.SERVICE_AUD, iss=s.drop()))),
    "missing exp": ("exp missing", lambda: s.bearer(s.sandbox_token(s.SERVICE_AUD, exp=s.drop()))),
    "missing iat": ("iat missing", lambda: s.bearer(s.sandbox_token(s.SERVICE_AUD, iat=s.drop()))),
    "missing jti": ("jti missing", lambda: s.bearer(s.sandbox_token(s.SERVICE_AUD, jti=s.drop()))),
    "empty jti": ("jti", lambda: s.bearer(s.sandbox_token(s.SERVICE_AUD, jti=""))),
    # SEC-3: header
    "missing kid": ("kid missing", lambda: s.bearer(s.sign(s.sandbox_claims(s.SERVICE_AUD), s.sandbox_key(), jku=s.SANDBOX_JKU, kid=None))),
    "wrong typ": ("typ", lambda: s.bearer(s.sign(s.sandbox_claims(s.SERVICE_AUD), s.sandbox_key(), jku=s.SANDBOX_JKU, typ="at+jwt"))),
    "missing typ": ("typ", lambda: s.bearer(s.sign(s.sandbox_claims(s.SERVICE_AUD), s.sandbox_key(), jku=s.SANDBOX_JKU, typ=None))),
    "crit header": ("malformed", lambda: s.bearer(s.sign(s.sandbox_claims(s.SERVICE_AUD), s.sandbox_key(), jku=s.SANDBOX_JKU,
                                           crit=["exp"]))),
    # SEC-7: keys and issuers
    "unknown kid": ("kid unknown", lambda: s.bearer(s.sign(s.sandbox_claims(s.SERVICE_AUD), s.ec_key("no-such-kid"), jku=s.SANDBOX_JKU))),
    "jku not allow-listed": ("jku not allowed", lambda: s.bearer(s.sign(s.sandbox_claims(s.SERVICE_AUD), s.ec_key("evil", "ES384"),
                                                    jku=EVIL_JKU))),
    "jku allow-listed for another client": ("jku not allowed", lambda: s.bearer(s.sign(
        s.epic_claims(s.SERVICE_AUD), s.epic_key(), jku=s.SANDBOX_JKU))),
    "jku with an appended query": ("jku not allowed", lambda: s.bearer(s.sign(s.sandbox_claims(s.SERVICE_AUD), s.sandbox_key(),
                                                          jku=s.SANDBOX_JKU + "?x=1"))),
    "issuer not allow-listed": ("iss not trusted", lambda: s.bearer(s.sign(s.sandbox_claims(s.SERVICE_AUD, iss=OTHER_ISS), s.sandbox_key(),
                                                       jku=s.SANDBOX_JKU))),
    "issuer differs by a trailing slash": ("iss not trusted", lambda: s.bearer(s.sandbox_token(s.SERVICE_AUD, iss=s.SANDBOX_ISS + "/"))),
    "key of another client (Epic's key, Sandbox iss)": ("kid unknown", lambda: s.bearer(s.sign(
        s.sandbox_claims(s.SERVICE_AUD), s.epic_key(), jku=s.SANDBOX_JKU))),
    "attacker key with the Sandbox kid": ("signature", lambda: s.bearer(s.sign(
        s.sandbox_claims(s.SERVICE_AUD), s.ec_key(s.SANDBOX_KID + "-forged"), jku=s.SANDBOX_JKU, kid=s.SANDBOX_KID))),
    # integrity
    "tampered payload (aud changed)": ("signature", lambda: s.bearer(s.tamper(s.sandbox_token(s.DISCOVERY_AUD), aud=s.SERVICE_AUD))),
    "tampered payload (exp extended)": ("signature", lambda: s.bearer(s.tamper(
        s.sandbox_token(s.SERVICE_AUD, now=time.time() - 600), exp=int(time.time()) + 300))),
    "stripped signature": ("signature", lambda: s.bearer(s.sandbox_token(s.SERVICE_AUD).rsplit(".", 1)[0] + ".")),
    "signature of another token": ("signature", lambda: s.bearer(_signature_of_another_token())),
    # transport
    "garbage token": ("malformed", lambda: s.bearer("not-a-jwt")),
    "three garbage segments": ("malformed", lambda: s.bearer("aaa.bbb.ccc")),
    "oversized token": ("malformed", lambda: s.bearer("a" * 20_000 + ".b.c")),
    "wrong scheme Basic": ("not a bearer token", lambda: {"Authorization": "Basic dXNlcjpwYXNz"}),
    "valid token under scheme Basic": ("not a bearer token", lambda: {"Authorization": f"Basic {s.sandbox_token(s.SERVICE_AUD)}"}),
    "empty bearer": ("empty bearer token", lambda: {"Authorization": "Bearer "}),
    "no Authorization header": ("no bearer token", lambda: {}),
}


def last_audit_outcome(client) -> str:
    engine = written_engine(client.application)
    with engine.connect() as conn:
        return conn.execute(sa.select(db.audit.c.outcome).order_by(db.audit.c.id.desc()).limit(1)).scalar_one()


@pytest.mark.parametrize("name", list(FORGERIES))
def test_sec3_to_sec10_forged_token_is_refused_with_bare_401(secure_client, jwks_http, name):
    """SEC-3..9: each forgery fails, for the reason it was built to trip (read back from the audit
    row, so a forgery cannot pass this test by failing on something incidental);
    SEC-10: 401, no body, WWW-Authenticate: Bearer, no hint on the wire."""
    reason, headers = FORGERIES[name]
    client = secure_client()
    resp = call(client, "service", headers())
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert resp.data == b""
    assert last_audit_outcome(client) == f"unauthorized: {reason}"
    # SEC-7: never a request to a URL that is not on the allow-list.
    assert all(c.request.url in (s.SANDBOX_JKU, s.EPIC_JKU) for c in jwks_http.calls)


def test_sec_forgery_suite_has_at_least_25_cases():
    assert len(FORGERIES) >= 25


@pytest.mark.parametrize("endpoint", ["discovery", "feedback"])
def test_sec2_forgeries_are_refused_on_discovery_and_feedback_too(secure_client, endpoint):
    """SEC-2: the same checks guard every endpoint."""
    client = secure_client()
    for name in ("alg none", "HS256 signed with the public key PEM", "expired", "no Authorization header",
                 "tampered payload (aud changed)", "issuer not allow-listed"):
        headers = FORGERIES[name][1]()
        if endpoint == "discovery" and name == "tampered payload (aud changed)":
            headers = s.bearer(s.tamper(s.sandbox_token(s.SERVICE_AUD), aud=s.DISCOVERY_AUD))
        assert call(client, endpoint, headers).status_code == 401, name
    assert call(client, endpoint, s.bearer(s.sandbox_token(s.SERVICE_AUD if endpoint == "discovery" else
                                                           s.DISCOVERY_AUD))).status_code == 401


def test_sec7_forged_jku_gets_zero_requests(secure_client, jwks_http):
    """SEC-7: a jku that is not allow-listed is refused without fetching it."""
    client = secure_client()
    resp = call(client, "service", FORGERIES["jku not allow-listed"][1]())
    assert resp.status_code == 401
    assert not any(EVIL_JKU in c.request.url for c in jwks_http.calls)
    assert len(jwks_http.calls) == 0


def test_sec8_replayed_token_is_refused(secure_client):
    """SEC-8: the same jti is accepted once; the replay is a 401."""
    client = secure_client()
    token = s.sandbox_token(s.SERVICE_AUD)
    assert call(client, "service", s.bearer(token)).status_code == 200
    assert call(client, "service", s.bearer(token)).status_code == 401


def test_sec8_replay_is_refused_by_another_worker_sharing_the_database(make_app, tmp_path, jwks_http):
    """SEC-8: the jti store is the database, so a second app (another worker) refuses the replay."""
    first = make_app(**s.auth_settings(tmp_path)).test_client()
    second = make_app(**s.auth_settings(tmp_path)).test_client()
    token = s.epic_token(s.SERVICE_AUD)
    assert call(first, "service", s.bearer(token)).status_code == 200
    assert call(second, "service", s.bearer(token)).status_code == 401


def test_sec8_failed_token_does_not_use_up_its_jti(secure_client):
    """SEC-8: the jti is stored only after every other check passed (a forger cannot burn jtis)."""
    client = secure_client()
    jti = "0d8f0f58-3c7d-4b33-a7a1-6bb8a3c2a111"
    assert call(client, "service", s.bearer(s.sandbox_token(s.DISCOVERY_AUD, jti=jti))).status_code == 401
    assert call(client, "service", s.bearer(s.sandbox_token(s.SERVICE_AUD, jti=jti))).status_code == 200


def test_sec8_tenant_must_be_allowed_when_the_client_lists_tenants(secure_client):
    """SEC-8: with `tenants` configured, a token for another tenant (or none) is refused."""
    client = secure_client(clients=s.client_config(sandbox_tenants=["org-a"]))
    assert call(client, "discovery", s.bearer(s.sandbox_token(s.DISCOVERY_AUD, tenant="org-b"))).status_code == 401
    assert call(client, "discovery", s.bearer(s.sandbox_token(s.DISCOVERY_AUD))).status_code == 401
    assert call(client, "discovery", s.bearer(s.sandbox_token(s.DISCOVERY_AUD, tenant="org-a"))).status_code == 200


def test_sec9_small_clock_skew_is_tolerated(secure_client):
    """SEC-9: a client clock 30 s ahead or a token expired 30 s ago still passes (leeway 60 s)."""
    client = secure_client()
    assert call(client, "discovery", s.bearer(s.sandbox_token(s.DISCOVERY_AUD, now=time.time() + 30))).status_code == 200
    late = s.sandbox_token(s.DISCOVERY_AUD, now=time.time() - 330)  # exp = now - 30
    assert call(client, "discovery", s.bearer(late)).status_code == 200


def test_sec5_aud_uses_public_base_url_not_the_request_host(secure_client):
    """SEC-5: behind a proxy the aud is the configured public URL, whatever Host the request had."""
    client = secure_client()
    token = s.sandbox_token(s.DISCOVERY_AUD)
    assert client.get("/cds-services", headers=s.bearer(token), base_url="http://10.0.0.7:8080").status_code == 200
    internal = s.sandbox_token("http://10.0.0.7:8080/cds-services")
    assert client.get("/cds-services", headers=s.bearer(internal), base_url="http://10.0.0.7:8080").status_code == 401


def test_sec2_auth_is_required_by_default_and_no_clients_means_401(make_app, jwks_http):
    """SEC-2: the default requires a JWT; with no trusted client configured every call is refused."""
    from cds_service.config import Settings

    assert Settings().auth_required is True
    client = make_app(auth_required=True, services=[s.SERVICE_ID]).test_client()
    assert call(client, "discovery", s.bearer(s.sandbox_token(s.DISCOVERY_AUD))).status_code == 401
    assert call(client, "service", {}).status_code == 401
