"""`fire` and `check` after a 401: what the service said (WWW-Authenticate, RFC 6750) and, when the token
was signed here, what is wrong with it — checked against the service's configuration (`--config`: the
service's own verifier, SEC-3..9), the service's clock (`Date`), or the JWK Set its `jku` names.
HTTP is mocked with `responses`."""
from __future__ import annotations

import json
from email.utils import formatdate
from pathlib import Path

import pytest
import responses
from cryptography.hazmat.primitives import serialization

from cds_service.cli.auth import Auth
from cds_service.cli.main import main
from cds_service.cli.unauthorized import explain_unauthorized, www_authenticate
from cds_service.ehr.signing import DemoKey, Signer, SigningKey
from cds_testing import security_support as s

ROOT = Path(__file__).resolve().parent.parent
URL = "http://127.0.0.1:8080"
ISS = "https://ehr.example.org"
KID = "ehr-key-1"


def signer(key: s.Key, *, iss: str = ISS, jku: str | None = None) -> Auth:
    return Auth(sign=Signer(SigningKey(key.private, key.alg, key.kid), iss, jku))


def config(tmp_path, key: s.Key, *, base: str = URL, iss: str = ISS, extra: str = "") -> str:
    """The service's configuration: `key`'s public half trusted for `iss`."""
    jwks = tmp_path / "client-jwks.json"
    jwks.write_text(json.dumps(s.jwks(key)))
    path = tmp_path / "cds.toml"
    path.write_text(f'public_base_url = "{base}"\n{extra}\n[[clients]]\niss = "{iss}"\njwks_file = "{jwks}"\n')
    return str(path)


def test_www_authenticate_parameters():
    assert www_authenticate('Bearer realm="cds", error="invalid_token", error_description="The token expired"') == {
        "realm": "cds", "error": "invalid_token", "error_description": "The token expired"}
    assert www_authenticate("Bearer") == {}


def test_what_the_service_says_is_shown():
    header = {"WWW-Authenticate": 'Bearer error="invalid_token", error_description="audience mismatch"'}
    lines = explain_unauthorized(header, Auth(), f"{URL}/cds-services")
    assert lines[0] == "the service says: invalid_token: audience mismatch"
    assert "no token was sent" in lines[1]


def test_a_bare_401_without_a_key_asks_for_one():
    lines = explain_unauthorized({"WWW-Authenticate": "Bearer"}, Auth(), f"{URL}/cds-services")
    assert lines == ["the service gives no reason (a bare 401, as CDS Hooks advises: SEC-10)",
                     "no token was sent: the service requires a signed JWT — give --token-key FILE --token-iss ISS "
                     "(--token-key demo signs as the EHR simulator, which config/demo.toml trusts)"]


def test_the_demo_key_at_another_host_is_an_untrusted_issuer_of_the_demo_configuration():
    """config/demo.toml trusts the simulator at http://127.0.0.1:8080; called as localhost, the demo key signs
    as http://localhost:8080/simulator, which it does not trust."""
    auth = Auth(sign=DemoKey().signer("http://localhost:8080"))
    lines = explain_unauthorized({}, auth, "http://localhost:8080/cds-services", config=str(ROOT / "config" / "demo.toml"))
    assert lines[1].startswith("token: iss http://localhost:8080/simulator, aud http://localhost:8080/cds-services, alg ES384")
    assert lines[-1].startswith("demo.toml refuses it: iss not trusted — no [[clients]] entry has iss "
                                "'http://localhost:8080/simulator' (trusted: http://127.0.0.1:8080/simulator, https://sandbox.cds-hooks.org)")
    assert lines[-1].endswith("the demo key signs as iss <--url>/simulator, so --url must be the service's public_base_url")


@pytest.mark.parametrize("case,expected", [
    ("another key", "refuses it: signature — the client's key with kid 'ehr-key-1' does not verify the signature: "
                    "--token-key is not the private half of that key"),
    ("another host", "refuses it: aud — the service expects aud 'https://cds.example.org/cds-services/x' "
                     "(its public_base_url https://cds.example.org): call it at that URL (--url)"),
    ("another issuer", "refuses it: iss not trusted — no [[clients]] entry has iss 'https://ehr.example.org' "
                       "(trusted: https://other.example.org)"),
    ("RS384 not allowed", "refuses it: alg — alg RS384 is not in its jwt_algorithms (ES384): use --token-alg"),
    ("all good", "the token passes every check of cds.toml here"),
])
def test_the_token_is_checked_against_the_services_configuration(tmp_path, case, expected):
    key = s.rsa_key(KID, "RS384")
    url = f"{URL}/cds-services/x"
    cfg = {"another key": lambda: config(tmp_path, s.Key(s.rsa_key("other", "RS384").private, KID, "RS384")),
           "another host": lambda: config(tmp_path, key, base="https://cds.example.org"),
           "another issuer": lambda: config(tmp_path, key, iss="https://other.example.org"),
           "RS384 not allowed": lambda: config(tmp_path, key, extra='jwt_algorithms = ["ES384"]'),
           "all good": lambda: config(tmp_path, key)}[case]()
    lines = explain_unauthorized({}, signer(key), url, config=cfg)
    assert any(expected in line for line in lines), lines


def test_a_clock_out_of_step_with_the_service_is_named():
    now = 1_800_000_000
    headers = {"Date": formatdate(now - 600, usegmt=True)}
    lines = explain_unauthorized(headers, signer(s.ec_key(KID)), f"{URL}/cds-services", now=lambda: now)
    assert any(line.startswith("your clock is 600 s ahead of the service's (its Date header)") for line in lines), lines


def test_an_expired_fixed_token_is_named():
    now = 1_800_000_000
    token = s.sign({"iss": ISS, "aud": f"{URL}/cds-services", "iat": now - 900, "exp": now - 600, "jti": "j"}, s.ec_key(KID))
    lines = explain_unauthorized({}, Auth(static_token=token), f"{URL}/cds-services", now=lambda: now)
    assert any(line.startswith("the token expired 600 s ago (exp)") for line in lines), lines


@responses.activate
def test_without_the_configuration_the_jku_is_checked_for_the_public_half_of_the_key():
    ours, other = s.ec_key(KID), s.ec_key("x")
    responses.get("https://ehr.example.org/good.json", json=s.jwks(ours))
    responses.get("https://ehr.example.org/bad.json", json={"keys": [{**other.public_jwk, "kid": KID}]})
    good = explain_unauthorized({}, signer(ours, jku="https://ehr.example.org/good.json"), f"{URL}/cds-services")
    bad = explain_unauthorized({}, signer(ours, jku="https://ehr.example.org/bad.json"), f"{URL}/cds-services")
    assert "the JWK Set at jku https://ehr.example.org/good.json holds the public half of the key (kid 'ehr-key-1')" in good
    assert ("the key with kid 'ehr-key-1' at jku https://ehr.example.org/bad.json is not the public half of --token-key: "
            "the signature cannot verify") in bad
    assert bad[-1].startswith("to check the token against the clients the service trusts") and "--config FILE" in bad[-1]


@responses.activate
def test_fire_with_a_key_prints_why_the_service_refused_it_not_that_a_key_is_needed(tmp_path, capsys):
    """The old message ("requires a JWT (see --token-key)") was printed even when a key was given."""
    key, other = s.ec_key(KID), s.ec_key("other")
    pem = tmp_path / "key.pem"
    pem.write_bytes(key.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    cfg = config(tmp_path, s.Key(other.private, KID, "ES384"))
    responses.get(f"{URL}/cds-services", status=401, headers={"WWW-Authenticate": "Bearer"})
    code = main(["fire", "patient-view", "--patient", "demo-03", "--url", URL, "--token-key", str(pem), "--token-iss", ISS,
                 "--token-kid", KID, "--config", cfg])
    err = capsys.readouterr().err
    assert code == 2 and "requires a JWT" not in err
    assert f"{URL}/cds-services answered 401 (unauthorized):" in err
    assert "cds.toml refuses it: signature — the client's key with kid 'ehr-key-1' does not verify the signature" in err


@responses.activate
def test_check_reports_the_reason_under_disc1(tmp_path, capsys):
    key = s.ec_key(KID)
    responses.get(f"{URL}/cds-services", status=401, headers={"WWW-Authenticate": "Bearer"})
    code = main(["check", URL, "--token-key", "demo", "--config", config(tmp_path, key), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    (finding,) = [f for r in report["rules"] for f in r["findings"] if f["rule"] == "DISC-1" and f["level"] == "FAIL"]
    assert "answered 401 to the signed call" in finding["message"] and "iss not trusted" in finding["message"]
