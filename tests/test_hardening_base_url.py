"""The JWT audience and card links never follow the request's Host header when
authentication is on, and forwarded headers are believed only from configured proxies."""
from __future__ import annotations

import runpy

import pytest

from cds_service import create_app
from cds_service.errors import ConfigError
from cds_testing import security_support as s
from cds_testing.fhir_factory import ascvd_prefetch, hook_request
from cds_testing.paths import ROOT

CONF = ROOT / "cds_service" / "server" / "gunicorn_conf.py"


def test_auth_on_without_public_base_url_refuses_to_start(tmp_path):
    """Without it a token minted for another vendor's URL was accepted with `Host: other-vendor.example`."""
    settings = s.auth_settings(tmp_path)
    del settings["public_base_url"]
    with pytest.raises(ConfigError, match="public_base_url is required when authentication is on"):
        create_app(settings, env={})


def test_development_mode_may_leave_it_unset(tmp_path):
    create_app({"auth_required": False, "database_url": f"sqlite:///{tmp_path}/x.sqlite3"}, env={})


def test_a_token_for_another_vendors_url_is_refused_whatever_the_host_header(tmp_path):
    app = create_app(s.auth_settings(tmp_path), env={})
    other = "https://other-vendor.example"
    token = s.sandbox_token(f"{other}/cds-services/{s.SERVICE_ID}")
    resp = app.test_client().post(f"/cds-services/{s.SERVICE_ID}", json=hook_request(prefetch=ascvd_prefetch()),
                                  headers={**s.bearer(token), "Host": "other-vendor.example", "X-Forwarded-Proto": "https"},
                                  base_url=other)
    assert resp.status_code == 401


def test_forwarded_headers_are_trusted_from_no_peer_by_default(monkeypatch):
    """gunicorn's own default believes X-Forwarded-Proto from 127.0.0.1 and ::1."""
    for name in ("CDS_CONFIG", "CDS_FORWARDED_ALLOW_IPS"):
        monkeypatch.delenv(name, raising=False)
    assert runpy.run_path(str(CONF))["forwarded_allow_ips"] == ""
    monkeypatch.setenv("CDS_FORWARDED_ALLOW_IPS", '["10.0.0.5", "10.1.0.0/16"]')
    assert runpy.run_path(str(CONF))["forwarded_allow_ips"] == "10.0.0.5,10.1.0.0/16"
