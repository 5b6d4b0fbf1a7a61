"""Slow clients against candidate production servers, and the hot path on each.

    .venv/bin/python bench/slow_clients.py                 # every candidate, about 4 minutes
    .venv/bin/python bench/slow_clients.py --only gthread,nginx --seconds 6

For each candidate (2 workers × 4 threads where it has workers and threads):
1. latency of `/healthz` and of a real hook call (`ascvd-10y-risk`, the S1 patient's body) on an idle
   server: `probes` calls of each, one at a time, each on a fresh connection;
2. the same while 16 slow connections are open on loopback (tests/cds_testing/slow_clients.py): 8 sending one header
   line every 2 s, 8 sending a complete header block and then the body at 1 byte/s; a probe that gets no
   answer within `--probe-timeout` counts as a timeout; then how long the server let the slow
   connections live (cut after N s, or still open when the phase ended);
3. the hot path with no slow client: S1's load (wrk, 8 connections, every patient-view service, a
   fresh hookInstance per call) on all candidates in alternating slices, with the CPU time per call of
   every process of the server (front, master, workers) from /proc.

Candidates: `gthread` (gunicorn alone with cds_service/server/gunicorn_conf.py: the server before issue
13), `nginx` (`cds-service serve`: nginx in front of the same gunicorn on a unix socket), `granian`
(bench/granian_serve.py: Rust HTTP server, WSGI, preloaded app, header read timeout 10 s), `waitress`
(one process, 8 threads; it buffers whole requests in its I/O thread), `gevent` (gunicorn's async worker
running the app in its greenlets: option (b) without a bridge to threads) and `nginx+granian` (granian on
a unix socket behind the same nginx front: what a faster app server behind the front would give).
granian, waitress and gevent are installed only for this measurement (`pip install granian waitress
gevent`); a missing one is skipped.
Results: bench/results/slow-clients-<date>.json and a Markdown table on stdout.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import s1_patient_view as s1  # noqa: E402
from bench.loadgen import interleave  # noqa: E402
from bench.servers import Gunicorn, Server, Service, cpu_seconds, descendants, free_port, service_env  # noqa: E402
from cds_testing.slow_clients import SlowClients  # noqa: E402  (tests/ is on sys.path: bench/s1_patient_view.py)

RESULTS = ROOT / "bench" / "results"
HOOK = "ascvd-10y-risk"
CANDIDATES = ("gthread", "nginx", "granian", "waitress", "gevent", "nginx+granian")


class Command(Server):
    """Any other server, started as a command line with `{port}` in it (granian, waitress)."""

    def __init__(self, argv: list[str], *, workers: int, threads: int, log_path: Path | None = None):
        self.argv, self.workers, self.threads, self.log_path = argv, workers, threads, log_path
        self._tmp = tempfile.TemporaryDirectory(prefix="cds-bench-")

    def __enter__(self) -> "Command":
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = service_env(self._tmp.name, self.workers, self.threads, {})
        Path(env["PROMETHEUS_MULTIPROC_DIR"]).mkdir()
        out = open(self.log_path, "ab") if self.log_path else None
        self.proc = subprocess.Popen([a.format(port=self.port) for a in self.argv], cwd=ROOT, env=env,
                                     stdout=out or subprocess.DEVNULL, stderr=out or subprocess.DEVNULL)
        if out:
            out.close()
        self._wait_ready()
        return self

    def worker_pids(self) -> list[int]:
        kids = super().worker_pids()
        return kids or [self.proc.pid]  # waitress: one process


class NginxGranian(Command):
    """granian on a unix socket behind the same nginx front as `cds-service serve` (cds_service/server/proxy.py)."""

    def __enter__(self) -> "NginxGranian":
        from cds_service.config import Settings
        from cds_service.server import proxy

        self.run_dir = Path(self._tmp.name) / "run"
        self.run_dir.mkdir()
        for d in (Path(self._tmp.name), self.run_dir):  # nginx's workers run as `nobody` when started as root
            d.chmod(0o711)
        sock = self.run_dir / "app.sock"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = service_env(self._tmp.name, self.workers, self.threads, {})
        Path(env["PROMETHEUS_MULTIPROC_DIR"]).mkdir()
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen([a.replace("{port}", f"unix:{sock}") for a in self.argv], cwd=ROOT, env=env,
                                     stdout=out, stderr=out)
        deadline = time.monotonic() + 60
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        sock.chmod(0o777)
        config = proxy.render_config(Settings.load(env={}), host="127.0.0.1", port=self.port, upstream_socket=sock,
                                     run_dir=self.run_dir, graceful_timeout_s=10, upstream_timeout_s=35)
        self.front = proxy.start(proxy.find_nginx(), config, self.run_dir)
        self._wait_ready()
        return self

    def front_pids(self) -> list[int]:
        return [self.front.pid, *descendants(self.front.pid)]

    def all_pids(self) -> list[int]:
        return super().all_pids() + self.front_pids()

    def __exit__(self, *exc) -> None:
        if getattr(self, "front", None) and self.front.poll() is None:
            self.front.send_signal(signal.SIGQUIT)
            self.front.wait(timeout=30)
        super().__exit__(*exc)


def launcher(name: str, log_dir: Path, workers: int = 2, threads: int = 4):
    bindir = Path(sys.executable).parent
    log = log_dir / f"slow-{name}.log"
    if name == "gthread":
        return Gunicorn(workers=workers, threads=threads, log_path=log)
    if name == "nginx":
        return Service(workers=workers, threads=threads, log_path=log)
    if name == "granian":
        return Command([sys.executable, str(ROOT / "bench" / "granian_serve.py"), "{port}", str(workers), str(threads)],
                       workers=workers, threads=threads, log_path=log)
    if name == "nginx+granian":
        return NginxGranian([sys.executable, str(ROOT / "bench" / "granian_serve.py"), "{port}", str(workers), str(threads)],
                            workers=workers, threads=threads, log_path=log)
    if name == "gevent":  # gunicorn's async worker, the app run in its greenlets (no bridge to threads)
        return Gunicorn(workers=workers, worker_class="gevent", args=("--worker-connections", "1000"), log_path=log)
    if name == "waitress":
        return Command([str(bindir / "waitress-serve"), "--listen=127.0.0.1:{port}", f"--threads={workers * threads}",
                        "--channel-timeout=10", "--call", "cds_service:create_app"], workers=1, threads=workers * threads,
                       log_path=log)
    raise ValueError(name)


def available(name: str) -> str | None:
    """Why a candidate cannot run here, or None."""
    if name == "nginx":
        from cds_service.server.proxy import find_nginx

        return None if find_nginx() else "nginx is not installed (apt-get install nginx-light)"
    if name in ("granian", "nginx+granian"):
        if name == "nginx+granian" and available("nginx"):
            return available("nginx")
        return None if _importable("granian") else "granian is not installed (pip install granian)"
    if name == "gevent":
        return None if _importable("gevent") else "gevent is not installed (pip install gevent)"
    if name == "waitress":
        return None if shutil.which("waitress-serve", path=str(Path(sys.executable).parent)) else \
            "waitress is not installed (pip install waitress)"
    return None


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _one(url: str, path: str, body: bytes | None, timeout: float) -> float | None:
    """Seconds for one call on a fresh connection, or None if it failed or took longer than `timeout`."""
    started = time.monotonic()
    try:
        if body is None:
            resp = requests.get(url + path, timeout=timeout, headers={"Connection": "close"})
        else:  # a fresh hookInstance per call, as an EHR sends
            body = body.replace(s1.HOOK_INSTANCE.encode(), str(uuid.uuid4()).encode())
            resp = requests.post(url + path, data=body, timeout=timeout,
                                 headers={"Content-Type": "application/json", "Connection": "close"})
    except requests.RequestException:
        return None
    return time.monotonic() - started if resp.status_code == 200 else None


def probe(url: str, body: bytes, *, n: int, timeout: float, until: float | None = None) -> dict:
    """`n` health probes and `n` hook calls, alternating (or until `until`, a monotonic time)."""
    got: dict[str, list[float | None]] = {"healthz": [], "hook": []}
    for _ in range(n):
        if until and time.monotonic() > until:
            break
        got["healthz"].append(_one(url, "/healthz", None, timeout))
        got["hook"].append(_one(url, f"/cds-services/{HOOK}", body, timeout))
    return {k: _summary(v) for k, v in got.items()}


def _summary(values: list[float | None]) -> dict:
    ok = [v * 1000 for v in values if v is not None]
    return {"calls": len(values), "failed_or_timeout": len(values) - len(ok),
            "median_ms": round(statistics.median(ok), 1) if ok else None, "max_ms": round(max(ok), 1) if ok else None}


def slow_phase(srv, body: bytes, *, probes: int, probe_timeout: float, hold_s: float) -> dict:
    """Idle latency, then latency with 16 slow connections open, then how long they lived."""
    idle = probe(srv.url, body, n=probes, timeout=probe_timeout)
    started = time.monotonic()
    with SlowClients("127.0.0.1", srv.port, f"/cds-services/{HOOK}", body, headers=8, bodies=8) as slow:
        time.sleep(2.0)  # every slow connection has been accepted and is trickling
        loaded = probe(srv.url, body, n=probes, timeout=probe_timeout, until=started + hold_s)
        while time.monotonic() < started + hold_s:
            time.sleep(0.2)
        lifetimes = {kind: slow.cut_times(kind) for kind in ("headers", "body")}
    return {"idle": idle, "with_16_slow": loaded, "slow_phase_s": round(time.monotonic() - started, 1),
            "slow_cut_after_s": {kind: {"cut": sorted(round(t, 1) for t in ts if t is not None),
                                        "still_open": sum(t is None for t in ts)} for kind, ts in lifetimes.items()}}


def run(*, names: list[str], seconds: float, probes: int, probe_timeout: float, hold_s: float) -> dict:
    log_dir = Path(tempfile.mkdtemp(prefix="cds-bench-logs-"))
    resources = s1.synthetic_patient()
    out: dict = {"log_dir": str(log_dir), "candidates": {}}
    names = [n for n in names if not _skip(n, out)]
    with ExitStack() as stack:
        servers = {}
        for name in names:
            print(f"[slow-clients] starting {name}", file=sys.stderr, flush=True)
            servers[name] = stack.enter_context(launcher(name, log_dir))
        reqs = {name: s1.requests_for(srv.url, resources) for name, srv in servers.items()}
        hook_body = next(b for _, p, b in reqs[names[0]] if p.endswith(HOOK))  # the placeholder is replaced per call
        for name, srv in servers.items():
            s1.check_answers(srv.url, reqs[name])
        # The hot path first, on idle servers, in alternating slices.
        rounds = max(2, round(seconds / 2.5))
        targets = {name: (srv.url, reqs[name]) for name, srv in servers.items()}
        cpu_of = {name: srv.cpu_seconds for name, srv in servers.items()}
        print("[slow-clients] hot path", file=sys.stderr, flush=True)
        interleave(targets, rounds=1, slice_s=2.0)  # warm-up
        front_before = {name: sum(cpu_seconds(p) for p in srv.front_pids()) for name, srv in servers.items()}
        hot = interleave(targets, rounds=rounds, slice_s=max(1.0, seconds / rounds), cpu_of=cpu_of)
        for name, srv in servers.items():
            if srv.front_pids():  # the proxy's share of the CPU per call (it only works during its own slices)
                front = sum(cpu_seconds(p) for p in srv.front_pids()) - front_before[name]
                hot[name]["front_cpu_ms_per_request"] = round(front * 1000 / max(1, hot[name]["requests"]), 3)
        for name, srv in servers.items():
            print(f"[slow-clients] slow clients against {name}", file=sys.stderr, flush=True)
            entry = slow_phase(srv, hook_body.encode(), probes=probes, probe_timeout=probe_timeout, hold_s=hold_s)
            entry["hot_path"] = hot[name]
            out["candidates"][name] = entry
    return out


def _skip(name: str, out: dict) -> bool:
    why = available(name)
    if why:
        out["candidates"][name] = {"status": "skipped", "note": why}
    return bool(why)


def table(r: dict) -> str:
    rows = [("candidate", "healthz idle / 16 slow (median, max ms; failed)", "hook idle / 16 slow (median, max ms; failed)",
             "slow connections cut (headers; bodies)", "hot path req/s", "p99 ms", "CPU ms/call")]
    base = r["candidates"].get("gthread", {}).get("hot_path", {}).get("rps")
    for name, c in r["candidates"].items():
        if "hot_path" not in c:
            rows.append((name, c.get("note", c.get("status", "?")), "", "", "", "", ""))
            continue

        def lat(kind):
            i, s = c["idle"][kind], c["with_16_slow"][kind]
            return (f"{i['median_ms']} / {s['median_ms']}, max {s['max_ms']}; "
                    f"{s['failed_or_timeout']}/{s['calls']} failed")

        cut = c["slow_cut_after_s"]

        def lived(kind):
            ts = cut[kind]["cut"]
            return (f"{len(ts)} at {min(ts):.0f}-{max(ts):.0f} s" if ts else "none") + f", {cut[kind]['still_open']} open"

        hp = c["hot_path"]
        ratio = f" ({hp['rps'] / base:.2f}×)" if base and name != "gthread" else ""
        rows.append((name, lat("healthz"), lat("hook"), f"{lived('headers')}; {lived('body')}",
                     f"{hp['rps']:.0f}{ratio}", f"{hp['p99_ms']:.1f}", f"{hp['server_cpu_ms_per_request']:.2f}" +
                     (f" (proxy {hp['front_cpu_ms_per_request']:.2f})" if "front_cpu_ms_per_request" in hp else "")))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(str(x).ljust(w) for x, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help=f"comma-separated candidates: {','.join(CANDIDATES)}")
    parser.add_argument("--seconds", type=float, default=12, help="hot-path load per candidate (default 12)")
    parser.add_argument("--probes", type=int, default=8, help="probes of each kind per phase (default 8)")
    parser.add_argument("--probe-timeout", type=float, default=5.0, help="a probe slower than this failed (default 5 s)")
    parser.add_argument("--hold", type=float, default=16.0, help="seconds the slow connections are kept open (default 16)")
    parser.add_argument("--out", help="result file (default bench/results/slow-clients-<date>.json)")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(CANDIDATES)
    started = time.monotonic()
    report = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "nproc": os.cpu_count(),
              "python": platform.python_version(), "load_avg_start": os.getloadavg()}
    report.update(run(names=names, seconds=args.seconds, probes=args.probes, probe_timeout=args.probe_timeout,
                      hold_s=args.hold))
    report["load_avg_end"] = os.getloadavg()
    report["total_seconds"] = round(time.monotonic() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = Path(args.out) if args.out else RESULTS / f"slow-clients-{datetime.now().strftime('%Y-%m-%d')}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{report['date']}, {report['nproc']} cores, load average {report['load_avg_start'][0]:.2f} → "
          f"{report['load_avg_end'][0]:.2f}, {report['total_seconds']} s\n")
    print(table(report))
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
