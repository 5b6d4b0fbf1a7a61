"""The nginx front of `cds-service serve` (cds_service/server/proxy.py): its configuration
carries the settings' limits, nginx itself accepts it, and without nginx only loopback is served."""
from __future__ import annotations

import subprocess

import pytest

from cds_service.config import Settings
from cds_service.server import proxy
from cds_service.server import serve as serve_module
from cds_testing.optional import missing


def _render(tmp_path, **overrides) -> str:
    settings = Settings.from_mapping({"auth_required": False, **overrides})
    return proxy.render_config(settings, host="127.0.0.1", port=8080, upstream_socket=tmp_path / "gunicorn.sock",
                               run_dir=tmp_path, graceful_timeout_s=10, upstream_timeout_s=35)


def test_the_limits_come_from_the_settings(tmp_path):
    conf = _render(tmp_path, header_timeout_s=7, body_timeout_s=4, max_body_bytes=123456, max_connections=99)
    assert "client_header_timeout 7s;" in conf and "client_body_timeout 4s;" in conf and "send_timeout 4s;" in conf
    assert "client_max_body_size 123456;" in conf and "worker_connections 99;" in conf
    assert f"proxy_pass http://unix:{tmp_path}/gunicorn.sock:;" in conf
    # The point of the front: gunicorn sees only whole requests, and hands over whole answers.
    assert "proxy_request_buffering on;" in conf and "proxy_buffering on;" in conf
    assert "listen 127.0.0.1:8080 " in conf
    # Every file nginx writes is in the run directory: nothing under /var or /etc is needed (non-root image).
    directives = "\n".join(line for line in conf.splitlines() if not line.lstrip().startswith("#"))
    assert "/var/" not in directives and "/etc/" not in directives


def test_an_ipv6_host_is_bracketed(tmp_path):
    settings = Settings.from_mapping({"auth_required": False})
    conf = proxy.render_config(settings, host="::1", port=9000, upstream_socket=tmp_path / "s", run_dir=tmp_path,
                               graceful_timeout_s=10, upstream_timeout_s=35)
    assert "listen [::1]:9000 " in conf


def test_forwarded_headers_are_passed_on_only_from_the_configured_proxies(tmp_path):
    conf = _render(tmp_path, forwarded_allow_ips=["10.1.0.0/16", "2001:db8::1"])
    geo = conf[conf.index("geo $cds_forwarding_peer"):conf.index("}", conf.index("geo $cds_forwarding_peer"))]
    assert "default 0;" in geo and "10.1.0.0/16 1;" in geo and "2001:db8::1 1;" in geo
    assert "proxy_set_header X-Forwarded-Proto $cds_forwarded_proto;" in conf
    # Other headers gunicorn takes as the scheme never come from the client.
    assert 'proxy_set_header X-Forwarded-Ssl "";' in conf and 'proxy_set_header X-Forwarded-Protocol "";' in conf
    assert "default 0;" in _render(tmp_path) and "default 1;" in _render(tmp_path, forwarded_allow_ips=["*"])


def test_forwarded_allow_ips_must_be_addresses_or_networks():
    from cds_service.errors import ConfigError

    with pytest.raises(ConfigError, match="forwarded_allow_ips"):
        Settings.from_mapping({"forwarded_allow_ips": ["10.0.0.1; include /etc/passwd"]})


@pytest.mark.parametrize("allowed", [[], ["127.0.0.1", "10.0.0.0/8", "::1"], ["*"]])
def test_nginx_accepts_the_configuration(tmp_path, allowed):
    nginx = proxy.find_nginx()
    if nginx is None:
        missing("nginx is not installed (tests/setup.d/50-nginx.sh installs it)")
    (tmp_path / "run").mkdir()
    conf = _render(tmp_path / "run", forwarded_allow_ips=allowed)
    (tmp_path / "run" / "nginx.conf").write_text(conf)
    check = subprocess.run([nginx, "-t", "-p", str(tmp_path / "run"), "-c", str(tmp_path / "run" / "nginx.conf"),
                            "-e", "stderr"], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr


@pytest.mark.parametrize("value", [0, -1])
def test_timeouts_must_be_positive(value):
    from cds_service.errors import ConfigError

    with pytest.raises(ConfigError, match="header_timeout_s"):
        Settings.from_mapping({"header_timeout_s": value})


def test_without_nginx_a_public_address_is_refused(monkeypatch, capsys):
    monkeypatch.setattr(proxy, "find_nginx", lambda: None)
    monkeypatch.setenv("CDS_AUTH_REQUIRED", "false")
    assert serve_module.serve("0.0.0.0", 8080, None, None) == 1
    assert "nginx is not installed" in capsys.readouterr().err
