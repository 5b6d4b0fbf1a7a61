"""CORS-1 for browser EHRs, and settings from TOML / CDS_* environment variables."""
import pytest

from cds_service.config import ConfigError, Settings

SANDBOX = "https://sandbox.cds-hooks.org"


def test_cors1_preflight_for_allowed_origin(make_app):
    client = make_app(cors_origins=[SANDBOX]).test_client()
    for path in ("/cds-services", "/cds-services/ascvd-10y-risk", "/cds-services/ascvd-10y-risk/feedback"):
        resp = client.options(path, headers={"Origin": SANDBOX, "Access-Control-Request-Method": "POST",
                                             "Access-Control-Request-Headers": "authorization,content-type"})
        assert resp.status_code == 204
        assert resp.headers["Access-Control-Allow-Origin"] == SANDBOX
        assert "POST" in resp.headers["Access-Control-Allow-Methods"]
        assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]


def test_cors1_actual_request_carries_origin_header(make_app):
    client = make_app(cors_origins=[SANDBOX]).test_client()
    resp = client.get("/cds-services", headers={"Origin": SANDBOX})
    assert resp.headers["Access-Control-Allow-Origin"] == SANDBOX and resp.headers["Vary"] == "Origin"


def test_cors1_other_origin_gets_no_cors_headers(make_app):
    client = make_app(cors_origins=[SANDBOX]).test_client()
    resp = client.get("/cds-services", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in resp.headers


def test_cors1_wildcard_origin_is_refused():
    with pytest.raises(ConfigError, match="CORS-1"):
        Settings.from_mapping({"cors_origins": ["*"]})


def test_auth_is_required_by_default():
    assert Settings.load(env={}).auth_required is True


def test_settings_from_toml_then_env_then_overrides(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('public_base_url = "https://a.example"\n[auth]\nrequired = false\n[fhir]\ntimeout = [0.5, 1.5]\n')
    s = Settings.load(cfg, env={"CDS_DEADLINE_S": "0.8", "CDS_CORS_ORIGINS": '["https://x.example"]'})
    assert s.auth_required is False and s.fhir_timeout == (0.5, 1.5) and s.deadline_s == 0.8
    assert s.cors_origins == ("https://x.example",) and s.public_base_url == "https://a.example"
    s = Settings.load(cfg, env={"CDS_AUTH_REQUIRED": "true"}, overrides={"deadline_s": 2})
    assert s.auth_required is True and s.deadline_s == 2.0


def test_config_file_from_env_and_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        Settings.load(env={"CDS_CONFIG": str(tmp_path / "missing.toml")})
    bad = tmp_path / "bad.toml"
    bad.write_text("[auth\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Settings.load(bad, env={})
    with pytest.raises(ConfigError, match="true or false"):
        Settings.load(env={"CDS_AUTH_REQUIRED": "maybe"})
    with pytest.raises(ConfigError, match="SEC-6"):
        Settings.from_mapping({"jwt_algorithms": ["RS384", "HS256"]})


def test_auth_on_without_clients_answers_bare_401(make_app):
    client = make_app(auth_required=True).test_client()
    resp = client.get("/cds-services")
    assert resp.status_code == 401 and resp.headers["WWW-Authenticate"] == "Bearer" and resp.data == b""


def test_dev_mode_logs_a_loud_warning(make_app, caplog):
    client = make_app(auth_required=False).test_client()
    with caplog.at_level("WARNING"):
        client.get("/cds-services")
    assert any("AUTHENTICATION IS OFF" in r.getMessage() for r in caplog.records)
