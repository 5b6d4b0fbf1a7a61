"""Start real servers on 127.0.0.1 for integration tests, and stop them afterwards."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from cds_testing.apps import services_dir
from cds_testing.paths import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@contextmanager
def cds_service(env: dict[str, str] | None = None, *, config: str | None = None, workers: int = 2, log_path: Path | None = None,
                port: int | None = None, alerts: bool = False):
    """Run `cds-service serve` (gunicorn) on a free port; yields the base URL. Unless `env` names a
    CDS_HOOKS_DIR, the service files are served as the test apps load them: without their `[alerts]`
    tables unless `alerts` (cds_testing.apps), so that calls repeated for one patient get their cards."""
    port = port or free_port()  # a caller that must know the URL before start (public_base_url) passes one
    cmd = [str(Path(sys.executable).parent / "cds-service"), "serve", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers)]
    if config:
        cmd += ["--config", config]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    full_env.update(env or {})
    with tempfile.TemporaryDirectory() as services:
        if "CDS_HOOKS_DIR" not in full_env and not alerts:
            full_env["CDS_HOOKS_DIR"] = services_dir(services, None, alerts=False)
        out = open(log_path, "wb") if log_path else subprocess.DEVNULL
        proc = subprocess.Popen(cmd, env=full_env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{base}/healthz", proc)
            yield base
        finally:
            stop(proc, timeout=15)
            if log_path:
                out.close()


def stop(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, then SIGKILL if the process is still there after `timeout` seconds; reaped either way."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)
