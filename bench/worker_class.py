"""Which gunicorn worker class: sync or gthread (the measurement behind cds_service/server/gunicorn_conf.py).

Two workloads, same 2 workers, 8 connections:
- "prefetch": S1 (all data in the request: pure CPU);
- "fetch": the same services with NO prefetch and a loopback FHIR server answering after 200 ms (an
  EHR's FHIR API under load), so each call mostly waits on I/O (the case when an EHR sends no
  prefetch). At 50 ms this 2-core machine is CPU-bound on the FHIR client and stub work alone, and
  the classes tie; the longer the EHR takes, the more threads matter.
"""
from __future__ import annotations

import json
import tempfile
from contextlib import ExitStack
from pathlib import Path

from . import s1_patient_view as s1
from .fhir_stub import FhirStub
from .loadgen import interleave
from .servers import Gunicorn


def _without_prefetch(reqs, fhir_url: str):
    out = []
    for method, path, body in reqs:
        data = json.loads(body)
        data.pop("prefetch")
        data["fhirServer"] = fhir_url
        out.append((method, path, json.dumps(data)))
    return out


def run(*, seconds: float, workers: int = 2, connections: int = 8, log_dir: Path | None = None,
        variants: dict | None = None, fhir_latency_s: float = 0.2) -> dict:
    """Both worker classes run at once and are measured in alternating slices on both workloads.

    `variants`: name → (worker_class, extra gunicorn args); default sync and gthread as configured.
    """
    variants = variants or {
        "sync": ("sync", ()),
        "gthread": ("gthread", ()),  # as checked in: keepalive 0, worker_connections = threads
        "gthread+keepalive": ("gthread", ("--keep-alive", "5", "--worker-connections", "1000")),  # gunicorn's defaults
    }
    resources = s1.synthetic_patient()
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="cds-bench-logs-"))
    rounds = max(2, round(seconds / 2.5))
    with FhirStub(resources, latency_s=fhir_latency_s) as stub, ExitStack() as stack:
        env = {"CDS_FHIR_SERVERS": json.dumps([stub.url]), "CDS_FHIR_ALLOW_HTTP": "true"}
        targets = {}
        for name, (worker_class, args) in variants.items():
            srv = stack.enter_context(Gunicorn(workers=workers, worker_class=worker_class, env=env, args=args,
                                               log_path=log_dir / f"wc-{name}.log"))
            reqs = s1.requests_for(srv.url, resources)
            fetch_reqs = _without_prefetch(reqs, stub.url)
            s1.check_answers(srv.url, reqs)
            s1.check_answers(srv.url, fetch_reqs)
            targets[f"{name}/prefetch"] = (srv.url, reqs)
            targets[f"{name}/fetch"] = (srv.url, fetch_reqs)
        interleave(targets, rounds=1, slice_s=min(2.0, seconds / 3), connections=connections)  # warm-up
        measured = interleave(targets, rounds=rounds, slice_s=max(1.0, seconds / rounds), connections=connections)
    by_class = {name: {load: measured[f"{name}/{load}"] for load in ("prefetch", "fetch")} for name in variants}
    first = next(iter(variants))
    ratios = {name: {load: round(by_class[name][load]["rps"] / by_class[first][load]["rps"], 3)
                     for load in ("prefetch", "fetch") if by_class[first][load]["rps"]}
              for name in variants if name != first}
    return {"workers": workers, "connections": connections, "fhir_latency_ms": fhir_latency_s * 1000, "by_class": by_class,
            f"rps_over_{first}": ratios}
