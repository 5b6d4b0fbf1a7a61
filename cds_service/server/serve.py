"""`cds-service serve`: the production topology on one host, started and supervised by one process.

    network ──TCP host:port──▶ nginx ──unix socket (private run directory)──▶ gunicorn, gthread workers

nginx (cds_service/server/proxy.py) reads every request whole, with read timeouts, before gunicorn
(cds_service/server/gunicorn_conf.py) sees it: slow or hostile clients cost nginx a connection, never a
worker thread (measured in bench/slow_clients.py). This process loads the app once (models included),
forks the gunicorn master from it (which forks the workers: the models are shared copy-on-write), then
starts nginx once the socket answers. SIGTERM or SIGINT: nginx stops accepting and finishes what it
holds, then gunicorn finishes the calls in flight; if either child dies, the other is stopped and the
exit status is 1. Without nginx installed, a loopback-only development server is gunicorn alone
(with a warning); any other address is refused, because gunicorn alone can be frozen by slow clients.
"""
from __future__ import annotations

import importlib
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from pathlib import Path

from gunicorn.app.base import BaseApplication

from cds_service import create_app
from cds_service.config import Settings
from cds_service.errors import ConfigError
from cds_service.security.trusted_clients import is_loopback
from cds_service.server import proxy
from hooks import ServiceFileError


def _load(app_target: str | None):
    if not app_target:
        return create_app()
    module, _, attr = app_target.partition(":")  # "module:callable()" or "module:object"
    obj = getattr(importlib.import_module(module), attr.removesuffix("()"))
    return obj() if attr.endswith("()") else obj


def serve(host: str, port: int, config_file: str | None, workers: int | None, threads: int | None = None,
          app_target: str | None = None) -> int:
    if config_file:
        os.environ["CDS_CONFIG"] = os.path.abspath(config_file)
    # `--workers`/`--threads` override the settings for everything that reads them (gunicorn_conf too).
    for name, value in (("CDS_WORKERS", workers), ("CDS_THREADS", threads)):
        if value:
            os.environ[name] = str(value)
    own_metrics_dir = None
    try:
        settings = Settings.load()
        nginx = proxy.find_nginx()
        if nginx is None and not is_loopback(host):
            raise ConfigError(f"nginx is not installed: refusing to serve {host} with gunicorn alone, which slow "
                              "clients can freeze (apt-get install nginx-light, or scripts/bootstrap as root)")
        if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # /metrics must sum every worker (prometheus_client multiprocess mode); set before
            # the app first imports prometheus_client.
            own_metrics_dir = tempfile.mkdtemp(prefix="cds-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_metrics_dir
        # Imported here, after CDS_CONFIG is set: the module reads the settings when first imported.
        from cds_service.server import gunicorn_conf

        app = _load(app_target)  # fail fast with a clear message before forking
    except (ConfigError, ServiceFileError) as exc:
        if own_metrics_dir:
            shutil.rmtree(own_metrics_dir, ignore_errors=True)
        print(f"cds-service: refusing to start: {exc}", file=sys.stderr)
        return 1

    print(f"cds-service: serving on http://{host}:{port}/  (discovery: http://{host}:{port}/cds-services)", flush=True)
    if getattr(app, "extensions", {}).get("cds") and app.extensions["cds"].settings.ui_simulator:
        print(f"cds-service: EHR simulator: http://{host}:{port}/simulator", flush=True)  # the demo configuration only
    run_dir = Path(tempfile.mkdtemp(prefix="cds-serve-"))
    master = os.getpid()
    try:
        if nginx is None:
            print("cds-service: WARNING: nginx is not installed; gunicorn alone, loopback only, no protection "
                  "against slow clients (development only)", file=sys.stderr, flush=True)
            return _run_gunicorn(app, gunicorn_conf, f"{host}:{port}")
        run_dir.chmod(0o711)  # nginx's workers may run as `nobody`: they must reach the socket by name
        upstream = run_dir / "gunicorn.sock"
        config = proxy.render_config(settings, host=host, port=port, upstream_socket=upstream, run_dir=run_dir,
                                     graceful_timeout_s=gunicorn_conf.graceful_timeout,
                                     upstream_timeout_s=gunicorn_conf.timeout + 5)
        return _Supervisor(app, gunicorn_conf, nginx, config, run_dir, upstream).run()
    finally:
        if os.getpid() == master:  # gunicorn's workers unwind through here too: only this process cleans up
            if own_metrics_dir:
                shutil.rmtree(own_metrics_dir, ignore_errors=True)
            shutil.rmtree(run_dir, ignore_errors=True)


def _run_gunicorn(app, gunicorn_conf, bind: str) -> int:
    """The gunicorn master in this process, serving the already loaded `app` (preloaded: workers fork from it).

    Returns the master's exit status. A worker leaves through here too (gunicorn ends it with
    sys.exit): that SystemExit goes on up, so the worker exits as gunicorn meant it to."""

    class _App(BaseApplication):
        def load_config(self):
            for key in ("worker_class", "threads", "worker_connections", "timeout", "graceful_timeout", "keepalive",
                        "accesslog", "forwarded_allow_ips", "post_fork", "on_starting", "child_exit",
                        "control_socket_disable"):
                self.cfg.set(key, getattr(gunicorn_conf, key))
            self.cfg.set("bind", bind)
            self.cfg.set("workers", gunicorn_conf.workers)
            self.cfg.set("preload_app", True)  # models load once, before forking

        def load(self):
            return app

    master = os.getpid()
    try:
        _App().run()
    except SystemExit as exc:
        if os.getpid() != master:
            raise
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


class _Supervisor:
    def __init__(self, app, gunicorn_conf, nginx: str, config: str, run_dir: Path, upstream: Path):
        self.app, self.conf, self.nginx, self.config = app, gunicorn_conf, nginx, config
        self.run_dir, self.upstream = run_dir, upstream
        self.stopping = False
        self._status: int | None = None

    def run(self) -> int:
        self.gunicorn = self._fork_gunicorn()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_stop)
        if not self._wait_for_upstream():
            return self._shutdown(failed=None if self.stopping else "gunicorn did not start")
        self.front = proxy.start(self.nginx, self.config, self.run_dir)
        while not self.stopping:
            if self._exited(self.gunicorn):
                return self._shutdown(failed=f"gunicorn exited ({self._status})")
            if self.front.poll() is not None:
                return self._shutdown(failed=f"nginx exited ({self.front.returncode})")
            time.sleep(0.2)
        return self._shutdown()

    def _fork_gunicorn(self) -> int:
        pid = os.fork()
        if pid:
            return pid
        # The child: the gunicorn master on the unix socket. It must never return into the supervisor's
        # loop; its workers, though, leave by SystemExit and exit normally (atexit, flushed logs).
        proxy.die_with_parent()
        try:
            code = _run_gunicorn(self.app, self.conf, f"unix:{self.upstream}")
        except SystemExit:
            raise
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    def _on_stop(self, signum, frame) -> None:
        self.stopping = True

    def _exited(self, pid: int) -> bool:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return True
        if done:
            self._status = os.waitstatus_to_exitcode(status)
        return bool(done)

    def _wait_for_upstream(self, timeout_s: float = 120.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self.stopping:
            if self._exited(self.gunicorn):
                return False
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                try:
                    probe.connect(str(self.upstream))
                    return True
                except OSError:
                    pass
            time.sleep(0.05)
        return False

    def _shutdown(self, failed: str | None = None) -> int:
        """nginx first (SIGQUIT: stop accepting, finish what it holds), then gunicorn (SIGTERM: finish the calls in flight)."""
        if failed:
            print(f"cds-service: {failed}; stopping", file=sys.stderr, flush=True)
        grace = self.conf.graceful_timeout + 5
        front = getattr(self, "front", None)
        if front is not None and front.poll() is None:
            front.send_signal(signal.SIGQUIT)
            try:
                front.wait(timeout=grace)
            except Exception:
                front.kill()
                front.wait()
        if not self._exited(self.gunicorn):
            os.kill(self.gunicorn, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while not self._exited(self.gunicorn):
                if time.monotonic() > deadline:
                    os.kill(self.gunicorn, signal.SIGKILL)
                    os.waitpid(self.gunicorn, 0)
                    break
                time.sleep(0.05)
        return 1 if failed else 0
