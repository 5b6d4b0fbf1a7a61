"""Trusted clients in the configuration and development mode (SEC-2)."""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
import responses
from cryptography.hazmat.primitives import serialization

from cds_service import create_app
from cds_service.config import ConfigError, Settings
from cds_service.security.trusted_clients import TrustedClient
from cds_testing import security_support as s

ROOT = Path(__file__).resolve().parent.parent


def readme_security_toml() -> str:
    """The TOML example of the README's security section (so the documentation cannot rot)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Security and trusted clients", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```toml\n(.*?)```", section, re.S).group(1)


def test_readme_example_config_loads_sandbox_and_epic_clients(tmp_path):
    cfg = tmp_path / "cds.toml"
    cfg.write_text(readme_security_toml())
    settings = Settings.load(cfg, env={})
    assert settings.auth_required is True
    assert all(isinstance(c, TrustedClient) for c in settings.clients)
    by_iss = {c.iss: c for c in settings.clients}
    sandbox = by_iss["https://sandbox.cds-hooks.org"]
    assert sandbox.key_urls == {"https://sandbox.cds-hooks.org/.well-known/jwks.json"}
    epic = next(c for c in settings.clients if "epic" in c.iss.lower())
    assert epic.fhir_servers and epic.jku


def test_clients_from_environment_json():
    env = {"CDS_CLIENTS": json.dumps(s.client_config())}
    settings = Settings.load(env=env)
    assert [c.iss for c in settings.clients] == [s.SANDBOX_ISS, s.EPIC_ISS]
    assert settings.clients[1].jwks_url == s.EPIC_JKU


def test_clients_are_frozen():
    client = Settings.from_mapping({"clients": s.client_config()}).clients[0]
    with pytest.raises(Exception):
        client.iss = "https://evil.example"  # type: ignore[misc]


@pytest.mark.parametrize("entry, message", [
    ({"jku": [s.SANDBOX_JKU]}, r"clients\[0\]\.iss is required"),
    ({"iss": s.SANDBOX_ISS, "jwks_uri": s.SANDBOX_JKU}, r"jwks_uri: unknown field \(did you mean .jwks_url.\?\)"),
    ({"iss": s.SANDBOX_ISS}, r"needs keys"),
    ({"iss": s.SANDBOX_ISS, "jku": ["http://sandbox.cds-hooks.org/jwks.json"]}, r"jku\[0\].*https"),
    ({"iss": s.SANDBOX_ISS, "jwks_url": "ftp://x.example/jwks"}, r"jwks_url.*https"),
    ({"iss": s.SANDBOX_ISS, "jku": "https://a.example/j", "fhir_servers": ["fhir.example.org"]}, r"fhir_servers\[0\]"),
    ({"iss": s.SANDBOX_ISS, "jku": [s.SANDBOX_JKU], "tenants": [""]}, r"tenants"),
    ({"iss": s.SANDBOX_ISS, "jwks": {"keys": [{"kty": "oct", "kid": "k", "k": "c2VjcmV0"}]}}, r"asymmetric keys only"),
    ({"iss": s.SANDBOX_ISS, "jwks": {"keys": [{"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}]}}, r"kid is required"),
    ({"iss": s.SANDBOX_ISS, "jwks": {"keys": [{"kty": "EC", "kid": "k", "crv": "P-384", "x": "AA", "y": "AA"}]}},
     r"not a usable public key"),
    ({"iss": s.SANDBOX_ISS, "jwks": {"keys": []}}, r"JWK Set"),
    ({"iss": s.SANDBOX_ISS, "jwks": s.jwks(s.sandbox_key()), "jwks_file": "x.json"}, r"either jwks or jwks_file"),
    ({"iss": s.SANDBOX_ISS, "jwks_file": "does/not/exist.json"}, r"jwks_file: file not found"),
    ("https://sandbox.cds-hooks.org", r"clients\[0\] must be a table"),
])
def test_bad_client_entries_stop_the_start_with_a_message_naming_the_field(entry, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_mapping({"clients": [entry]})


def test_duplicate_issuer_is_refused():
    with pytest.raises(ConfigError, match="configured twice"):
        Settings.from_mapping({"clients": s.client_config() + s.client_config(epic=False)})


def test_plain_http_jwks_is_allowed_for_a_loopback_simulator_only():
    client = Settings.from_mapping({"clients": [{"iss": "http://127.0.0.1:8080/ehr",
                                                 "jku": ["http://127.0.0.1:8080/ehr/.well-known/jwks.json",
                                                         "http://localhost:8080/ehr/jwks.json"]}]}).clients[0]
    assert len(client.jku) == 2


@pytest.mark.parametrize("algs, message", [(["ES384", "HS256"], "SEC-6"), (["none"], "SEC-6"), (["EdDSA"], "unsupported")])
def test_sec6_algorithm_settings_cannot_open_symmetric_or_unknown_algorithms(algs, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_mapping({"jwt_algorithms": algs})


def test_sec2_auth_is_required_by_default():
    """SEC-2 [OUR CHOICE]: nothing in the defaults turns authentication off."""
    assert Settings.load(env={}).auth_required is True
    assert Settings().auth_required is True


def test_sec2_development_mode_warns_loudly_at_start_and_on_every_call(make_app, caplog):
    """`auth.required = false` logs a warning at start and on each call."""
    caplog.set_level(logging.WARNING)
    app = make_app(services=[s.SERVICE_ID], auth_required=False)
    start = [r for r in caplog.records if getattr(r, "event", None) == "auth_disabled"]
    assert len(start) == 1 and "DISABLED" in start[0].getMessage()
    client = app.test_client()
    client.get("/cds-services")
    client.get("/cds-services")
    assert len([r for r in caplog.records if getattr(r, "event", None) == "auth_disabled"]) == 3


def test_demo_config_starts_and_answers_only_the_signed_simulator(tmp_path):
    """`scripts/serve` uses config/demo.toml, which requires a JWT (`[auth] required = true`, SEC-2): an
    unsigned call is a 401, and a call signed with the simulator's demo key (a trusted client there) is a 200."""
    app = create_app({"database_url": f"sqlite:///{tmp_path}/demo.sqlite3"}, config_file=str(ROOT / "config" / "demo.toml"),
                     env={})
    client = app.test_client()
    assert client.get("/cds-services").status_code == 401
    base = "http://127.0.0.1:8080"  # the demo's public_base_url; the simulator's iss and jku hang off it
    keys = ROOT / "cds_service" / "demo" / "keys"
    simulator = s.Key(serialization.load_pem_private_key((keys / "simulator-demo-private-key.pem").read_bytes(), None),
                      json.loads((keys / "simulator-jwks.json").read_text())["keys"][0]["kid"], "ES384")
    claims = {**s.sandbox_claims(f"{base}/cds-services"), "iss": f"{base}/simulator"}
    token = s.sign(claims, simulator, jku=f"{base}/simulator/.well-known/jwks.json")
    with responses.RequestsMock():  # its keys come from the configured jwks_file: nothing is fetched
        resp = client.get("/cds-services", headers=s.bearer(token))
    assert resp.status_code == 200 and resp.get_json()["services"]
