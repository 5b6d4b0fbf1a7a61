"""S4: throughput of the S1 workload with 1, 2 and 4 workers (checked-in gunicorn config otherwise),
on the default SQLite database and on PostgreSQL (a server started for the run, as in the tests).

Closed loop at a concurrency high enough to keep every worker busy (8 connections, as S1). On a
2-core machine, 2 workers should give >= 1.6x one worker; 4 workers cannot add cores, only show
that oversubscription does not collapse throughput. The database matters: every call writes rows
(issued cards, explanation, audit), and SQLite serialises all writers of all workers on one lock
held across each commit's fsync, while PostgreSQL commits concurrent transactions together.
"""
from __future__ import annotations

import tempfile
from contextlib import nullcontext
from pathlib import Path

from . import s1_patient_view as s1
from .loadgen import run_wrk
from .servers import ROOT, Gunicorn, cpu_seconds

import sys  # noqa: E402  (the tests' PostgreSQL launcher)

sys.path.insert(0, str(ROOT / "tests"))
import db_servers  # noqa: E402


def _series(workers_list, connections, seconds, log_dir, resources, env, tag) -> dict:
    results = {}
    for workers in workers_list:
        with Gunicorn(workers=workers, env=env, log_path=log_dir / f"s4-{tag}-{workers}w.log") as srv:
            reqs = s1.requests_for(srv.url, resources)
            s1.check_answers(srv.url, reqs)
            run_wrk(srv.url, reqs, connections=connections, seconds=min(2, seconds))  # warm-up
            pids = srv.worker_pids()
            before = sum(cpu_seconds(p) for p in pids)
            res = run_wrk(srv.url, reqs, connections=connections, seconds=seconds).as_dict()
            res["worker_cpu_ms_per_request"] = round((sum(cpu_seconds(p) for p in pids) - before) * 1000
                                                     / max(1, res["requests"]), 3)
            results[workers] = res
    base = results[workers_list[0]]["rps"]
    return {"by_workers": results, "speedup": {w: round(r["rps"] / base, 3) if base else None for w, r in results.items()}}


def run(*, seconds: float, workers_list=(1, 2, 4), connections: int = 8, log_dir: Path | None = None,
        databases=("sqlite", "postgres")) -> dict:
    resources = s1.synthetic_patient()
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="cds-bench-logs-"))
    out: dict = {"connections": connections}
    for database in databases:
        if database == "postgres" and db_servers.postgres_bin() is None:
            out[database] = {"status": "skipped", "note": "PostgreSQL is not installed (tests/setup.d/40-postgres-redis.sh)"}
            continue
        ctx = db_servers.postgres_server() if database == "postgres" else nullcontext(None)
        with ctx as url:
            env = {"CDS_DATABASE_URL": url} if url else {}
            out[database] = _series(workers_list, connections, seconds, log_dir, resources, env, database)
    return out
