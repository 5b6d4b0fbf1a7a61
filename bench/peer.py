"""The peer for S1: HealthChain (PyPI `healthchain`) serving a trivial greeting CDS service, under its own
recommended server (`healthchain serve`: uvicorn, one process), on the same request as ours.

Nothing of HealthChain is in this repository: `PeerServer` installs the pinned version into a venv of
its own under the user's cache directory (`~/.cache/cds-bench/healthchain-<version>`, reused by later
runs; pip and PyPI as configured on the machine), writes the greeting app (below, our code, written
against HealthChain's documented `CDSHooksService.hook` API) into a temporary directory and starts it.
The greeting does no CDS work: HealthChain parses the body into its `CDSRequest` model (as it does for
every hook) and the handler answers one fixed card.

    with PeerServer() as peer:      # peer.url, peer.path_for(service_id), peer.all_pids()
        ...
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from .servers import Server, free_port

VERSION = "0.16.1"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cds-bench"

APP = '''
from healthchain.gateway import CDSHooksService, HealthChainAPI
from healthchain.models import CDSRequest, CDSResponse, Card

app = HealthChainAPI(title="greeting")
cds = CDSHooksService()


@cds.hook("patient-view", id="{service_id}")
def greet(request: CDSRequest) -> CDSResponse:
    return CDSResponse(cards=[Card(summary="Hello from HealthChain", indicator="info",
                                   source={{"label": "HealthChain greeting"}})])


app.register_service(cds)


@app.get("/healthz")
def healthz():
    return {{"status": "ok"}}
'''


def venv(version: str = VERSION) -> Path:
    """The peer's venv, created and filled once (a few minutes the first time)."""
    path = CACHE / f"healthchain-{version}"
    python = path / "bin" / "python"
    if not (path / "bin" / "healthchain").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"healthchain=={version}"], check=True, timeout=1800)
    return path


class PeerServer(Server):
    """`healthchain serve` (uvicorn, one process) on a free loopback port, stopped with SIGTERM."""

    workers = 1  # the uvicorn process `healthchain serve` starts

    def __init__(self, *, service_id: str = "ascvd-10y-risk", log_path: Path | None = None, version: str = VERSION):
        self.service_id, self.log_path, self.version = service_id, log_path, version
        self._tmp = tempfile.TemporaryDirectory(prefix="cds-bench-peer-")

    def __exit__(self, *exc) -> None:
        # `healthchain serve` starts uvicorn as a child: SIGTERM to the launcher alone left uvicorn running.
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        super().__exit__(*exc)

    def path_for(self, service_id: str) -> str:
        return f"/cds/cds-services/{service_id}"  # HealthChain mounts CDS Hooks under /cds

    def __enter__(self) -> "PeerServer":
        env_dir = venv(self.version)
        Path(self._tmp.name, "peer_app.py").write_text(APP.format(service_id=self.service_id))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CDS_", "PYTHONPATH"))}
        self.proc = subprocess.Popen([str(env_dir / "bin" / "healthchain"), "serve", "peer_app:app", "--host", "127.0.0.1",
                                      "--port", str(self.port)], cwd=self._tmp.name, env=env, stdout=out, stderr=out,
                                     start_new_session=True)  # its own process group: uvicorn is a child of it
        if self.log_path:
            out.close()
        self._wait_ready(timeout=120)
        return self
