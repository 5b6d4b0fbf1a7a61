"""S1: patient-view with full prefetch under the production server, against a no-work floor.

The patient: one carebundle patient (US Core, seed 42, 34 Observations: CMP, CBC, lipids, HbA1c,
urine albumin, BP panel, vitals) plus a smoking-status Observation, so the ASCVD equation has every
input: 35 Observations, Conditions and MedicationRequests. Every patient-view service the server
loads (read from its own discovery document) gets the prefetch its templates ask for, answered from
that patient by a small FHIR-search matcher, so adding a service file adds it to the benchmark.
"""
from __future__ import annotations

import json
import sys
import tempfile
import uuid
from pathlib import Path
from urllib.parse import parse_qsl

import requests

from .loadgen import LoadResult, run_wrk
from .servers import ROOT, Gunicorn, cpu_seconds

sys.path.insert(0, str(ROOT / "tests"))
import fhir_factory  # noqa: E402  (the test suite's FHIR builders)

PATIENT_SEED = 42


def synthetic_patient() -> list[dict]:
    """The ~35-Observation patient as plain FHIR dicts, references rewritten to `Type/id`."""
    import carebundle

    bundle = json.loads(carebundle.to_json(carebundle.generate_bundle(
        profile="hypertension", seed=PATIENT_SEED, sex="M", age_range=(55, 65)), indent=0))
    for e in bundle["entry"]:  # a transaction Bundle names resources by urn:uuid; a server assigns ids
        e["resource"].setdefault("id", e["fullUrl"].removeprefix("urn:uuid:"))
    ids = {e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}
    text = json.dumps([e["resource"] for e in bundle["entry"]])
    for urn, ref in ids.items():
        text = text.replace(f'"{urn}"', f'"{ref}"')
    resources = json.loads(text)
    pid = next(r["id"] for r in resources if r["resourceType"] == "Patient")
    # carebundle records no smoking status; never smoked (SNOMED 266919005), recorded at the same visit.
    visit = next(r["effectiveDateTime"] for r in resources if r["resourceType"] == "Observation")
    resources.append(fhir_factory.coded_obs("smoking-1", "72166-2", "266919005", date=visit[:10], pid=pid))
    return resources


def search(resources: list[dict], query: str) -> dict | None:
    """Answer a rendered prefetch query from `resources`: a read, or a search on patient/code/status."""
    path, _, qs = query.partition("?")
    if not qs:
        rtype, _, rid = path.partition("/")
        return next((r for r in resources if r["resourceType"] == rtype and r.get("id") == rid), None)
    params = dict(parse_qsl(qs))
    hits = [r for r in resources if r["resourceType"] == path]
    if "code" in params:
        wanted = set(params["code"].split(","))
        hits = [r for r in hits if any(f"{c.get('system')}|{c.get('code')}" in wanted or c.get("code") in wanted
                                       for c in _codings(r))]
    if "status" in params:
        hits = [r for r in hits if r.get("status") in params["status"].split(",")]
    if "clinical-status" in params:
        hits = [r for r in hits if any(c.get("code") in params["clinical-status"].split(",")
                                       for c in r.get("clinicalStatus", {}).get("coding", []))]
    return fhir_factory.bundle(*hits)


def _codings(resource: dict) -> list[dict]:
    concept = resource.get("code") or resource.get("medicationCodeableConcept") or {}
    return concept.get("coding", [])


def render(template: str, context: dict) -> str:
    for key, value in context.items():
        template = template.replace(f"{{{{context.{key}}}}}", str(value))
    return template.replace("{{userPractitionerId}}", "example").replace("{{userPractitionerRoleId}}", "example")


def requests_for(base_url: str, resources: list[dict]) -> list[tuple[str, str, str]]:
    """One (method, path, body) per patient-view service in the server's discovery document."""
    pid = next(r["id"] for r in resources if r["resourceType"] == "Patient")
    discovery = requests.get(f"{base_url}/cds-services", timeout=10).json()
    out = []
    for svc in discovery["services"]:
        if svc["hook"] != "patient-view":
            continue
        context = {"userId": "Practitioner/example", "patientId": pid}
        prefetch = {key: search(resources, render(q, context)) for key, q in svc.get("prefetch", {}).items()}
        body = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()), "context": context, "prefetch": prefetch}
        out.append(("POST", f"/cds-services/{svc['id']}", json.dumps(body)))
    if not out:
        raise RuntimeError("the server declares no patient-view service")
    return out


def check_answers(base_url: str, reqs: list[tuple[str, str, str]]) -> list[dict]:
    """Each request must succeed with at least one card before we time it (a 4xx is fast, not good)."""
    answers = []
    for _, path, body in reqs:
        r = requests.post(base_url + path, data=body, headers={"Content-Type": "application/json"}, timeout=30)
        if r.status_code != 200 or not r.json().get("cards"):
            raise RuntimeError(f"S1 {path}: {r.status_code} {r.text[:300]}")
        answers.append(r.json())
    return answers


def run(*, seconds: float, connections: int = 8, workers: int = 2, worker_class: str | None = None,
        log_dir: Path | None = None) -> dict:
    """S1 under the service, then the floor with the same config and the same bytes; returns the ratios."""
    resources = synthetic_patient()
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="cds-bench-logs-"))
    with Gunicorn(workers=workers, worker_class=worker_class, log_path=log_dir / "s1-service.log") as srv:
        reqs = requests_for(srv.url, resources)
        answers = check_answers(srv.url, reqs)
        run_wrk(srv.url, reqs, connections=connections, seconds=min(2, seconds))  # warm-up
        service, service_cpu = measured(srv, reqs, connections, seconds)
        service_c1 = run_wrk(srv.url, reqs, connections=1, seconds=max(2, seconds / 2))  # no queueing
    floor_body = log_dir / "floor-body.json"
    floor_body.write_text(json.dumps(answers[0]))
    with Gunicorn(workers=workers, worker_class=worker_class, app="bench.floor_app:create_floor_app()",
                  env={"BENCH_FLOOR_BODY": str(floor_body)}, log_path=log_dir / "s1-floor.log") as floor_srv:
        run_wrk(floor_srv.url, reqs, connections=connections, seconds=min(2, seconds))
        floor, floor_cpu = measured(floor_srv, reqs, connections, seconds)
        floor_c1 = run_wrk(floor_srv.url, reqs, connections=1, seconds=max(2, seconds / 2))
    n_obs = sum(r["resourceType"] == "Observation" for r in resources)
    return {
        "services": [p.rsplit("/", 1)[1] for _, p, _ in reqs], "observations": n_obs,
        "request_bytes": round(sum(len(b) for _, _, b in reqs) / len(reqs)),
        "workers": workers, "connections": connections,
        "service": service.as_dict(), "floor": floor.as_dict(),
        # CPU time the workers spent per request: unlike latency, it hardly moves when other
        # processes compete for the cores, so it is the steadiest figure on a shared machine.
        "service_cpu_ms_per_request": service_cpu, "floor_cpu_ms_per_request": floor_cpu,
        "cpu_ratio": service_cpu / floor_cpu if floor_cpu else None,
        "p99_ratio": service.p99_ms / floor.p99_ms if floor.p99_ms else None,
        "p50_ratio": service.p50_ms / floor.p50_ms if floor.p50_ms else None,
        "throughput_ratio": service.rps / floor.rps if floor.rps else None,
        # One connection: the latency of a call on an idle server, without queueing behind others.
        "service_c1": service_c1.as_dict(), "floor_c1": floor_c1.as_dict(),
        "p99_ratio_c1": service_c1.p99_ms / floor_c1.p99_ms if floor_c1.p99_ms else None,
    }


def measured(srv: Gunicorn, reqs, connections: int, seconds: float) -> tuple[LoadResult, float]:
    """One wrk run, and the workers' CPU milliseconds per request during it."""
    pids = srv.worker_pids()
    before = sum(cpu_seconds(p) for p in pids)
    result = run_wrk(srv.url, reqs, connections=connections, seconds=seconds)
    after = sum(cpu_seconds(p) for p in pids)
    return result, round((after - before) * 1000 / max(1, result.requests), 3)


def result_ok(result: LoadResult) -> bool:
    return result.errors == 0 and result.non_2xx == 0
