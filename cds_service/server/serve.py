"""Run the app under gunicorn (a real WSGI server), with the checked-in `gunicorn.conf.py` defaults."""
from __future__ import annotations

import os
import shutil
import sys
import tempfile

from gunicorn.app.base import BaseApplication

from hooks import ServiceFileError

from cds_service import create_app
from cds_service.errors import ConfigError


def serve(host: str, port: int, config_file: str | None, workers: int | None) -> int:
    if config_file:
        os.environ["CDS_CONFIG"] = os.path.abspath(config_file)
    own_metrics_dir = None
    try:
        # Imported here, after CDS_CONFIG is set: the module reads the settings when first imported.
        from cds_service.server import gunicorn_conf

        if (workers or gunicorn_conf.workers) > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # /metrics must sum every worker (prometheus_client multiprocess mode, issue #7); set before
            # the app first imports prometheus_client.
            own_metrics_dir = tempfile.mkdtemp(prefix="cds-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_metrics_dir
        app = create_app()  # fail fast with a clear message before forking workers
    except (ConfigError, ServiceFileError) as exc:
        print(f"cds-service: refusing to start: {exc}", file=sys.stderr)
        return 1

    class _App(BaseApplication):
        def load_config(self):
            for key in ("worker_class", "threads", "worker_connections", "timeout", "graceful_timeout", "keepalive",
                        "accesslog", "forwarded_allow_ips", "post_fork", "on_starting", "child_exit"):
                self.cfg.set(key, getattr(gunicorn_conf, key))
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers or gunicorn_conf.workers)
            self.cfg.set("preload_app", True)  # models load once, before forking

        def load(self):
            return app

    print(f"cds-service: serving on http://{host}:{port}/  (discovery: http://{host}:{port}/cds-services)", flush=True)
    if app.extensions["cds"].settings.ui_simulator:  # issue #7: the demo configuration's EHR simulator
        print(f"cds-service: EHR simulator: http://{host}:{port}/simulator", flush=True)
    master = os.getpid()
    try:
        _App().run()
    finally:
        if own_metrics_dir and os.getpid() == master:  # workers unwind through here too: only the master cleans up
            shutil.rmtree(own_metrics_dir, ignore_errors=True)
    return 0
