"""Which gunicorn worker class: sync or gthread (the measurement behind cds_service/gunicorn_conf.py).

Two workloads, same 2 workers, 8 connections:
- "prefetch": S1 (all data in the request: pure CPU);
- "fetch": the same services with NO prefetch and a loopback FHIR server answering after 50 ms, so
  each call mostly waits on I/O (the common case when an EHR sends no prefetch).
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from . import s1_patient_view as s1
from .fhir_stub import FhirStub
from .loadgen import run_wrk
from .servers import Gunicorn


def _without_prefetch(reqs, fhir_url: str):
    out = []
    for method, path, body in reqs:
        data = json.loads(body)
        data.pop("prefetch")
        data["fhirServer"] = fhir_url
        out.append((method, path, json.dumps(data)))
    return out


def run(*, seconds: float, workers: int = 2, connections: int = 8, log_dir: Path | None = None) -> dict:
    resources = s1.synthetic_patient()
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="cds-bench-logs-"))
    results: dict = {}
    with FhirStub(resources, latency_s=0.05) as stub:
        env = {"CDS_FHIR_SERVERS": json.dumps([stub.url]), "CDS_FHIR_ALLOW_HTTP": "true"}
        for worker_class in ("sync", "gthread"):
            with Gunicorn(workers=workers, worker_class=worker_class, env=env,
                          log_path=log_dir / f"wc-{worker_class}.log") as srv:
                reqs = s1.requests_for(srv.url, resources)
                fetch_reqs = _without_prefetch(reqs, stub.url)
                s1.check_answers(srv.url, reqs)
                s1.check_answers(srv.url, fetch_reqs)
                run_wrk(srv.url, reqs, connections=connections, seconds=min(2, seconds))
                results[worker_class] = {
                    "prefetch": run_wrk(srv.url, reqs, connections=connections, seconds=seconds).as_dict(),
                    "fetch": run_wrk(srv.url, fetch_reqs, connections=connections, seconds=seconds).as_dict(),
                }
    ratio = {load: round(results["gthread"][load]["rps"] / results["sync"][load]["rps"], 3)
             for load in ("prefetch", "fetch") if results["sync"][load]["rps"]}
    return {"workers": workers, "connections": connections, "fhir_latency_ms": 50, "by_class": results,
            "gthread_over_sync_rps": ratio}
