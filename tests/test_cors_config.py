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


# ---- where a wrong setting was given: file, line and the key as written, or the variable ----------------

CONFIG = '''public_base_url = "https://cds.example.org"

[auth]
requird = false

[[clients]]
iss = "https://a.example"
jwks_url = "https://a.example/jwks"

[[clients]]
iss = "https://b.example"
jwks_ulr = "https://b.example/jwks"
'''


def test_a_typo_in_the_config_file_names_the_file_line_and_key_as_written(tmp_path):
    cfg = tmp_path / "cds.toml"
    cfg.write_text(CONFIG)
    with pytest.raises(ConfigError) as err:
        Settings.load(cfg, env={})
    assert str(err.value) == f"{cfg}:4: [auth] requird: unknown setting (did you mean '[auth] required'?)"
    cfg.write_text(CONFIG.replace("requird", "required"))
    with pytest.raises(ConfigError) as err:
        Settings.load(cfg, env={})
    assert str(err.value) == f"{cfg}:12: clients[1].jwks_ulr: unknown field (did you mean 'jwks_url'?)"
    cfg.write_text('[uii]\nenabled = true\n')
    with pytest.raises(ConfigError, match=r"cds.toml:2: \[uii\] enabled: unknown setting \(did you mean '\[ui\] enabled'\?\)"):
        Settings.load(cfg, env={})


def test_a_typo_in_an_environment_variable_names_the_variable():
    with pytest.raises(ConfigError) as err:
        Settings.load(env={"CDS_AUTH_REQUIRD": "false"})
    assert str(err.value) == "environment variable CDS_AUTH_REQUIRD: unknown setting (did you mean 'CDS_AUTH_REQUIRED'?)"
    with pytest.raises(ConfigError, match="^environment variable CDS_DEADLINE_S: must be a number$"):
        Settings.load(env={"CDS_DEADLINE_S": "soon"})


def test_a_wrong_value_names_its_line_and_key_as_written(tmp_path):
    cfg = tmp_path / "cds.toml"
    cfg.write_text('log_level = "INFO"\n\n[cors]\norigins = ["*"]\n')
    with pytest.raises(ConfigError) as err:
        Settings.load(cfg, env={})
    assert str(err.value) == f"{cfg}:4: [cors] origins: must list origins; '*' is not allowed (CORS-1)"
    # the environment wins over the file, and the error names where the value came from
    with pytest.raises(ConfigError, match="^environment variable CDS_CORS_ORIGINS: must list origins"):
        Settings.load(tmp_path / "cds.toml", env={"CDS_CORS_ORIGINS": '["*"]'})


# ---- Chrome's Private Network Access preflight (a public page calling a service on a private address) ----

def _pna_preflight(client, origin=SANDBOX, ask=True):
    headers = {"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    if ask:
        headers["Access-Control-Request-Private-Network"] = "true"
    return client.options("/cds-services/ascvd-10y-risk", headers=headers)


def test_private_network_access_preflight_is_answered_when_configured(make_app):
    client = make_app(["ascvd-10y-risk"], cors_origins=[SANDBOX], cors_allow_private_network=True).test_client()
    resp = _pna_preflight(client)
    assert resp.status_code == 204 and resp.headers["Access-Control-Allow-Private-Network"] == "true"
    assert resp.headers["Access-Control-Allow-Origin"] == SANDBOX
    assert "Access-Control-Allow-Private-Network" not in _pna_preflight(client, ask=False).headers  # only when asked
    assert "Access-Control-Allow-Private-Network" not in _pna_preflight(client, origin="https://evil.example").headers
    actual = client.get("/cds-services", headers={"Origin": SANDBOX, "Access-Control-Request-Private-Network": "true"})
    assert "Access-Control-Allow-Private-Network" not in actual.headers  # a preflight answer, not an actual request's


def test_private_network_access_is_off_by_default(make_app):
    client = make_app(["ascvd-10y-risk"], cors_origins=[SANDBOX]).test_client()
    assert "Access-Control-Allow-Private-Network" not in _pna_preflight(client).headers
    assert Settings.load(env={}).cors_allow_private_network is False
