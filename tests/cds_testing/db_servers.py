"""Real PostgreSQL and Redis servers for the scale-out tests: Debian's binaries, started on
127.0.0.1 on free ports with their data in a temporary directory, and stopped afterwards.

PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user (created by
Debian's package) or `nobody`; its data directory is handed to that user first.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from cds_testing.servers import free_port


def postgres_bin() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin that has initdb (Debian's layout)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def redis_bin() -> str | None:
    return shutil.which("redis-server")


def _run_as() -> dict:
    """Popen arguments to drop root for PostgreSQL; nothing when we are not root."""
    if os.geteuid() != 0:
        return {}
    for name in ("postgres", "nobody"):
        try:
            user = pwd.getpwnam(name)
            return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        except KeyError:
            continue
    raise RuntimeError("running as root and no 'postgres' or 'nobody' user to run PostgreSQL as")


@contextmanager
def postgres_server(tmp: Path | None = None):
    """Yield a SQLAlchemy URL (postgresql+psycopg://…) of a fresh cluster; the server is stopped after.

    The cluster lives in its own directory under the system temp dir (pytest's tmp_path is private to
    root, and PostgreSQL runs as another user); it is removed afterwards unless `tmp` is given, in which
    case the logs are copied there.
    """
    bindir = postgres_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    as_user = _run_as()
    home = Path(tempfile.mkdtemp(prefix="cds-pg-"))
    data, sockets = home / "data", home / "sock"
    sockets.mkdir()
    if as_user:
        for path in (home, sockets):
            os.chown(path, as_user["user"], as_user["group"])
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "HOME": str(home)}
    proc = None
    try:
        init = subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", "cds", "--auth=trust", "-E", "UTF8",
                               "--no-sync"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, **as_user)
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stderr.decode(errors='replace')[-500:]}")
        for attempt in range(5):
            port = free_port()
            with open(home / f"postgres-{attempt}.log", "wb") as log:
                proc = subprocess.Popen([str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(sockets),
                                         "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"],
                                        stdout=log, stderr=subprocess.STDOUT, env=env, **as_user)
            if _wait_postgres(bindir, port, proc):
                break
            _stop(proc)
        else:
            raise RuntimeError(f"PostgreSQL did not start; see {home}/postgres-*.log")
        yield f"postgresql+psycopg://cds@127.0.0.1:{port}/postgres"
    finally:
        if proc is not None:
            _stop(proc)
        if tmp is not None:
            tmp.mkdir(parents=True, exist_ok=True)
            for log_file in home.glob("postgres-*.log"):
                shutil.copy(log_file, tmp / log_file.name)
        shutil.rmtree(home, ignore_errors=True)


def _wait_postgres(bindir: Path, port: int, proc: subprocess.Popen, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False  # e.g. the port was taken in the meantime: try another
        ok = subprocess.run([str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-q"]).returncode == 0
        if ok:
            return True
        time.sleep(0.2)
    return False


@contextmanager
def redis_server(tmp: Path):
    """Yield a redis:// URL of a fresh, non-persistent Redis server; stopped after."""
    binary = redis_bin()
    if binary is None:
        raise RuntimeError("Redis is not installed (apt-get install redis-server)")
    tmp.mkdir(parents=True, exist_ok=True)
    for attempt in range(5):
        port = free_port()
        log = open(tmp / f"redis-{attempt}.log", "wb")
        proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                 "--daemonize", "no", "--dir", str(tmp)], stdout=log, stderr=subprocess.STDOUT)
        if _wait_redis(port, proc):
            break
        _stop(proc)
    else:
        raise RuntimeError(f"Redis did not start; see {tmp}/redis-*.log")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(proc)


def _wait_redis(port: int, proc: subprocess.Popen, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # PostgreSQL: "fast" shutdown (SIGTERM would wait for clients); Redis: exit
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
