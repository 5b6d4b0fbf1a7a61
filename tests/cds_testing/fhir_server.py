"""Start the test FHIR server (tests/fhir_server/server.js: Medplum's engine) on 127.0.0.1 and stop it afterwards."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from cds_testing.paths import TESTS
from cds_testing.servers import stop

HERE = TESTS / "fhir_server"  # server.js and its node_modules (tests/setup.d/20-fhir-server.sh)
BASE_PATH = "/fhir/R4"


class FhirServerUnavailable(RuntimeError):
    pass


@contextmanager
def running_fhir_server(startup_timeout: float = 60.0) -> Iterator[str]:
    """Yield the base URL (http://127.0.0.1:<ephemeral port>/fhir/R4); the process is killed on exit."""
    node = shutil.which("node")
    if node is None:
        raise FhirServerUnavailable("node is not installed (tests/setup.d/20-fhir-server.sh needs Node.js >= 20)")
    if not (HERE / "node_modules" / "@medplum" / "fhir-router").is_dir():
        raise FhirServerUnavailable("tests/fhir_server/node_modules is missing: run tests/setup.d/20-fhir-server.sh")
    # Output goes to a file, not a pipe: a pipe nobody reads could fill up and stall the server.
    out = tempfile.NamedTemporaryFile("w+", prefix="fhir-server-", suffix=".log")
    proc = subprocess.Popen([node, str(HERE / "server.js"), "0"], cwd=HERE, stdout=out, stderr=subprocess.STDOUT)
    try:
        port = _wait_for_port(proc, Path(out.name), startup_timeout)
        yield f"http://127.0.0.1:{port}{BASE_PATH}"
    finally:
        stop(proc, timeout=10)
        out.close()


def _wait_for_port(proc: subprocess.Popen, log: Path, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text()
        for line in text.splitlines():
            if line.startswith("listening "):
                return int(line.split()[1])
        if proc.poll() is not None:
            raise FhirServerUnavailable(f"the FHIR server exited ({proc.returncode}): {text[-2000:]}")
        time.sleep(0.1)
    raise FhirServerUnavailable(f"the FHIR server did not start within {timeout:.0f} s")
