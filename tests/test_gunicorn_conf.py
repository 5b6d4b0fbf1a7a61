"""The production server's checked-in configuration."""
from __future__ import annotations

import runpy
from pathlib import Path

CONF = Path(__file__).resolve().parent.parent / "cds_service" / "server" / "gunicorn_conf.py"


def test_defaults_preload_models_and_use_threads(monkeypatch):
    for name in ("CDS_CONFIG", "CDS_WORKERS", "CDS_THREADS", "CDS_TORCH_THREADS"):
        monkeypatch.delenv(name, raising=False)
    conf = runpy.run_path(str(CONF))
    assert conf["preload_app"] is True  # models load once in the master, before fork
    assert conf["worker_class"] == "gthread" and conf["threads"] >= 2  # chosen by measurement (bench/README.md)
    assert conf["graceful_timeout"] > 0 and conf["wsgi_app"] == "cds_service:create_app()"
    # Balance across workers (bench/README.md): one request per connection, no accepting past `threads`.
    assert conf["keepalive"] == 0 and conf["worker_connections"] == conf["threads"]


def test_cds_service_serve_applies_every_server_setting():
    """`cds-service serve` copies the checked-in settings into gunicorn; none may be forgotten."""
    import inspect

    from cds_service.server import serve as server

    source = inspect.getsource(server._run_gunicorn)
    for key in ("worker_class", "threads", "worker_connections", "timeout", "graceful_timeout", "keepalive", "post_fork",
                "control_socket_disable"):
        assert f'"{key}"' in source


def test_workers_and_threads_come_from_the_settings(monkeypatch, tmp_path):
    cfg = tmp_path / "cds.toml"
    cfg.write_text("workers = 5\n")
    monkeypatch.setenv("CDS_CONFIG", str(cfg))
    monkeypatch.setenv("CDS_THREADS", "3")
    conf = runpy.run_path(str(CONF))
    assert conf["workers"] == 5 and conf["threads"] == 3


def test_post_fork_limits_torch_to_the_configured_threads(monkeypatch):
    import torch

    monkeypatch.delenv("CDS_CONFIG", raising=False)
    monkeypatch.setenv("CDS_TORCH_THREADS", "1")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        runpy.run_path(str(CONF))["post_fork"](None, None)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
