"""S4: throughput of the S1 workload with 1, 2 and 4 workers (checked-in gunicorn config otherwise),
on the default SQLite database and on PostgreSQL (a server started for the run, as in the tests).

Closed loop at a concurrency high enough to keep every worker busy (8 connections, as S1). On a
2-core machine, 2 workers should give >= 1.6x one worker; 4 workers cannot add cores, only show
that oversubscription does not collapse throughput. The database matters: every call writes rows
(issued cards, explanation, audit), and SQLite serialises all writers of all workers on one lock
held across each commit's fsync, while PostgreSQL commits concurrent transactions together.
"""
from __future__ import annotations

import sys  # noqa: E402  (the tests' PostgreSQL launcher)
import tempfile
import time
from contextlib import ExitStack, nullcontext
from pathlib import Path

from . import s1_patient_view as s1
from .loadgen import interleave
from .servers import ROOT, Service, calls_per_worker, cpu_seconds, log_offset

sys.path.insert(0, str(ROOT / "tests"))  # the test suite's helper package, cds_testing
from cds_testing import db_servers  # noqa: E402


def _series(workers_list, connections, seconds, log_dir, resources, env, tag) -> dict:
    """Every worker count runs at once (idle servers cost memory, not CPU) and is measured in
    alternating slices, so that all of them meet the same background load."""
    rounds = max(2, round(seconds / 2.5))
    with ExitStack() as stack:
        servers = {w: stack.enter_context(Service(workers=w, env=env, log_path=log_dir / f"s4-{tag}-{w}w.log"))
                   for w in workers_list}
        targets = {}
        for w, srv in servers.items():
            reqs = s1.requests_for(srv.url, resources)
            s1.check_answers(srv.url, reqs)
            targets[w] = (srv.url, reqs)
        cpu_of = {w: (lambda srv=srv: sum(cpu_seconds(p) for p in srv.worker_pids())) for w, srv in servers.items()}
        interleave(targets, rounds=1, slice_s=min(2.0, seconds / 3), connections=connections)  # warm-up
        offsets = {w: log_offset(srv.log_path) for w, srv in servers.items()}
        results = interleave(targets, rounds=rounds, slice_s=max(1.0, seconds / rounds), connections=connections,
                             cpu_of=cpu_of)
        time.sleep(0.2)  # the last call lines reach the logs
        for w, srv in servers.items():
            counts = calls_per_worker(srv.log_path, offsets[w])
            # Share of the calls answered by the busiest worker: 1/workers is a perfect balance.
            results[w]["busiest_worker_share"] = round(max(counts.values()) / sum(counts.values()), 3) if counts else None
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
            if database == "sqlite-normal":  # SQLite without the fsync per commit (sqlite_synchronous)
                env["CDS_SQLITE_SYNCHRONOUS"] = "NORMAL"
            out[database] = _series(workers_list, connections, seconds, log_dir, resources, env, database)
    return out
