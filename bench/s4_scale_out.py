"""S4: throughput of the S1 workload with 1, 2 and 4 workers (checked-in gunicorn config otherwise).

Closed loop at a concurrency high enough to keep every worker busy (8 connections, as S1). On a
2-core machine, 2 workers should give >= 1.6x one worker; 4 workers cannot add cores, only show
that oversubscription does not collapse throughput.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from . import s1_patient_view as s1
from .loadgen import run_wrk
from .servers import Gunicorn


def run(*, seconds: float, workers_list=(1, 2, 4), connections: int = 8, log_dir: Path | None = None) -> dict:
    resources = s1.synthetic_patient()
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="cds-bench-logs-"))
    results = {}
    for workers in workers_list:
        with Gunicorn(workers=workers, log_path=log_dir / f"s4-{workers}w.log") as srv:
            reqs = s1.requests_for(srv.url, resources)
            s1.check_answers(srv.url, reqs)
            run_wrk(srv.url, reqs, connections=connections, seconds=min(2, seconds))  # warm-up
            results[workers] = run_wrk(srv.url, reqs, connections=connections, seconds=seconds).as_dict()
    base = results[workers_list[0]]["rps"]
    return {
        "connections": connections,
        "by_workers": results,
        "speedup": {w: round(r["rps"] / base, 3) if base else None for w, r in results.items()},
    }
