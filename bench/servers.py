"""Start servers for a measurement: the production server (`Service`: `cds-service serve`, nginx in front
of gunicorn) and gunicorn alone (`Gunicorn`, for comparisons).

`Gunicorn` gets its listening socket from here on an ephemeral port (`fd://N`), so no other process
can take the port between "find" and "bind"; nginx binds its own, so `Service` retries on a lost race.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_CONF = ROOT / "cds_service" / "server" / "gunicorn_conf.py"


def service_env(tmp: str, workers: int, threads: int | None, extra: dict[str, str]) -> dict[str, str]:
    """The servers' environment: only the CDS_* settings given here count; auth off, SQLite in `tmp`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    env.update({
        "CDS_AUTH_REQUIRED": "false",
        "CDS_DATABASE_URL": f"sqlite:///{tmp}/cds.sqlite3",
        "CDS_WORKERS": str(workers),
        "CDS_LOG_LEVEL": "INFO",  # as in production: one JSON call line per request
        # As in production with several workers (Dockerfile, `cds-service serve`): metrics in files.
        "PROMETHEUS_MULTIPROC_DIR": f"{tmp}/prometheus",
        "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]),
    })
    if threads:
        env["CDS_THREADS"] = str(threads)
    if os.environ.get("BENCH_HOOKS_DIR"):  # bench/run.py --hooks-dir: measure another set of services
        env["CDS_HOOKS_DIR"] = os.environ["BENCH_HOOKS_DIR"]
    if os.environ.get("BENCH_SQLITE_SYNCHRONOUS"):  # bench/run.py --sqlite-synchronous
        env["CDS_SQLITE_SYNCHRONOUS"] = os.environ["BENCH_SQLITE_SYNCHRONOUS"]
    env.update(extra)
    return env


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        out += kids
        todo += kids
    return out


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


class Server:
    """Common to the launchers: readiness, worker pids, CPU of every process, SIGTERM on exit."""

    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    workers: int = 1

    def _wait_ready(self, timeout: float = 60.0) -> None:
        """Until /healthz answers 200 and every worker is up; on failure the server is stopped (a failed
        __enter__ gets no __exit__), then the error raised."""
        try:
            self._poll_ready(timeout)
        except RuntimeError:
            self.__exit__(None, None, None)
            raise

    def _poll_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{type(self).__name__} exited with {self.proc.returncode} (log: {self.log_path})")
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200 and \
                        len(self.worker_pids()) >= self.workers:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{type(self).__name__} did not become ready in time")

    def worker_pids(self) -> list[int]:
        """The processes that run the app (gunicorn's workers)."""
        return children(self.proc.pid) if self.proc else []

    def all_pids(self) -> list[int]:
        """Every process of the server (front, master, workers): for CPU per call."""
        return [self.proc.pid, *descendants(self.proc.pid)] if self.proc else []

    def front_pids(self) -> list[int]:
        """The reverse proxy's processes, if the server has one."""
        return []

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(p) for p in self.all_pids())

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._tmp.cleanup()


class Service(Server):
    """The production server exactly as deployed: `cds-service serve` (nginx in front of gunicorn).

    `with Service(workers=2) as srv:` → srv.url, srv.port, srv.proc (the `cds-service` process),
    srv.worker_pids() (gunicorn's workers), srv.all_pids(); stopped with SIGTERM on exit. `app` is another
    WSGI target ("module:callable()") under the same server (the S1 floor); `env` adds CDS_* settings.
    """

    def __init__(self, *, workers: int = 2, threads: int | None = None, app: str | None = None,
                 env: dict[str, str] | None = None, log_path: Path | None = None):
        self.workers, self.threads, self.app = workers, threads, app
        self.extra_env = env or {}
        self.log_path = log_path
        self._tmp = tempfile.TemporaryDirectory(prefix="cds-bench-")

    def __enter__(self) -> "Service":
        for attempt in range(3):  # nginx binds the port itself: another process may take it first
            env = service_env(self._tmp.name, self.workers, self.threads, self.extra_env)
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            cmd = [str(Path(sys.executable).parent / "cds-service"), "serve", "--host", "127.0.0.1",
                   "--port", str(self.port), "--workers", str(self.workers)]
            if self.threads:
                cmd += ["--threads", str(self.threads)]
            if self.app:
                cmd += ["--app", self.app]
            out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=out)
            if self.log_path:
                out.close()
            try:
                self._wait_ready()
                return self
            except RuntimeError as exc:
                if attempt == 2 or "exited with" not in str(exc):  # a lost race for the port ends the server at once
                    raise
                self._tmp = tempfile.TemporaryDirectory(prefix="cds-bench-")
        raise AssertionError("unreachable")

    def front_pids(self) -> list[int]:
        masters = [p for p in children(self.proc.pid) if _comm(p) == "nginx"]
        return masters + [p for m in masters for p in children(m)]

    def gunicorn_pid(self) -> int | None:
        return next((p for p in children(self.proc.pid) if _comm(p) != "nginx"), None)

    def worker_pids(self) -> list[int]:
        master = self.gunicorn_pid()
        return children(master) if master else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn(Server):
    """gunicorn alone with the checked-in configuration (cds_service/server/gunicorn_conf.py) on a TCP port:
    how the service was served before nginx stood in front; for comparisons (worker class, slow clients).

    `app` is a WSGI target ("module:callable"); None means the checked-in `wsgi_app` (the service).
    `env` adds CDS_* settings; auth is off and SQLite lives in a temporary directory unless overridden.
    """

    def __init__(self, *, workers: int = 2, worker_class: str | None = None, threads: int | None = None,
                 app: str | None = None, env: dict[str, str] | None = None, log_path: Path | None = None,
                 args: tuple[str, ...] = ()):
        self.workers, self.worker_class, self.threads, self.app = workers, worker_class, threads, app
        self.args = tuple(args)  # more gunicorn command-line options (experiments: --keep-alive 0, …)
        self.extra_env = env or {}
        self.log_path = log_path
        self._tmp = tempfile.TemporaryDirectory(prefix="cds-bench-")

    def __enter__(self) -> "Gunicorn":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(2048)
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = service_env(self._tmp.name, self.workers, self.threads, self.extra_env)
        cmd = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "--bind", f"fd://{sock.fileno()}",
               "--workers", str(self.workers)]
        if self.worker_class:
            cmd += ["--worker-class", self.worker_class]
            if self.worker_class == "sync":  # gunicorn silently runs gthread when threads > 1
                cmd += ["--threads", "1"]
        cmd += list(self.args)
        if self.app:
            cmd.append(self.app)
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, pass_fds=(sock.fileno(),), stdout=out, stderr=out)
        if self.log_path:
            out.close()  # the server has its own copy
        sock.close()
        self._wait_ready()
        return self


def rss_kib(pid: int) -> int | None:
    """Resident set size of one process (VmRSS), or None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its reaped children (from /proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # the process is gone
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return (utime + stime + cutime + cstime) / ticks


def log_offset(path: Path | None) -> int:
    return path.stat().st_size if path and path.exists() else 0


def calls_per_worker(path: Path | None, offset: int = 0) -> dict[int, int]:
    """How many calls each worker pid answered, from the JSON call log written after `offset`."""
    counts: dict[int, int] = {}
    if not path or not path.exists():
        return counts
    with open(path, "rb") as f:
        f.seek(offset)
        for raw in f:
            if raw.startswith(b"{") and b'"event":"call"' in raw:
                try:
                    pid = json.loads(raw)["pid"]
                except (ValueError, KeyError):
                    continue
                counts[pid] = counts.get(pid, 0) + 1
    return counts
