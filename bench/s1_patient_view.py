"""S1: patient-view with full prefetch under the production server, against a no-work floor.

The patient: one carebundle patient (US Core, seed 42, female, 34 Observations: CMP, CBC, lipids,
HbA1c, urine albumin, BP panel, vitals) plus smoking status, a 2-hour glucose and the number of
pregnancies, so every patient-view model has its inputs, and ten years of history: the lipid panel
every two years and the blood pressure panel every year before the last visit (values jittered).
Conditions and MedicationRequests come from carebundle. The body of `ascvd-10y-risk` is then 53 KB.

Every patient-view service the server loads (read from its own discovery document) gets the prefetch
its templates ask for, answered from that patient by a small FHIR-search matcher; `run` measures
`ascvd-10y-risk` (S1_SERVICE, the service the targets are stated for) unless told otherwise.
"""
from __future__ import annotations

import json
import random
import sys
import tempfile
import uuid
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl

import requests

from .loadgen import interleave
from .peer import VERSION as PEER_VERSION
from .peer import PeerServer
from .servers import ROOT, Service, cpu_seconds

sys.path.insert(0, str(ROOT / "tests"))  # the test suite's helper package, cds_testing
from cds_testing import fhir_factory  # noqa: E402  (the test suite's FHIR builders)

PATIENT_SEED = 42
S1_SERVICE = "ascvd-10y-risk"
HISTORY_YEARS = 10
# Repeated before the last visit: the lipid panel (total, HDL, LDL calculated, triglycerides) every
# LIPID_EVERY_YEARS, the blood pressure panel every year.
LIPID_CODES = ("2093-3", "2085-9", "13457-7", "2571-8")
BP_PANEL = "85354-9"
LIPID_EVERY_YEARS = 2


# Replaced by a fresh id per request in the load generator (bench/loadgen.py).
HOOK_INSTANCE = "__HOOK_INSTANCE__"


def synthetic_patient() -> list[dict]:
    """The ~35-Observation patient as plain FHIR dicts, references rewritten to `Type/id`."""
    import carebundle

    bundle = json.loads(carebundle.to_json(carebundle.generate_bundle(
        profile="hypertension", seed=PATIENT_SEED, sex="F", age_range=(55, 65)), indent=0))
    for e in bundle["entry"]:  # a transaction Bundle names resources by urn:uuid; a server assigns ids
        e["resource"].setdefault("id", e["fullUrl"].removeprefix("urn:uuid:"))
    ids = {e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}
    text = json.dumps([e["resource"] for e in bundle["entry"]])
    for urn, ref in ids.items():
        text = text.replace(f'"{urn}"', f'"{ref}"')
    resources = json.loads(text)
    pid = next(r["id"] for r in resources if r["resourceType"] == "Patient")
    # What carebundle does not record but the services read, at the same visit: smoking status (never
    # smoked, SNOMED 266919005) for ASCVD; a 2-hour glucose tolerance result and the number of
    # pregnancies for the diabetes model. With them every patient-view model scores this patient.
    visit = next(r["effectiveDateTime"] for r in resources if r["resourceType"] == "Observation")[:10]
    resources.append(fhir_factory.coded_obs("smoking-1", "72166-2", "266919005", date=visit, pid=pid))
    resources.append(fhir_factory.quantity_obs("ogtt-1", "1518-0", 141, "mg/dL", date=visit, pid=pid))
    resources.append(fhir_factory.quantity_obs("pregnancies-1", "11996-6", 2, "{#}", date=visit, pid=pid))
    return resources + history(resources)


def history(resources: list[dict], years: int = HISTORY_YEARS, seed: int = PATIENT_SEED) -> list[dict]:
    """Earlier copies of the lipid and blood pressure Observations: new ids, a date one year apart
    (lipids every LIPID_EVERY_YEARS), values jittered by ±10 %; newest first."""
    rng = random.Random(seed)
    out = []
    for obs in resources:
        if obs["resourceType"] != "Observation":
            continue
        code = obs["code"]["coding"][0]["code"]
        every = LIPID_EVERY_YEARS if code in LIPID_CODES else 1 if code == BP_PANEL else 0
        if not every:
            continue
        last = datetime.fromisoformat(obs["effectiveDateTime"].replace("Z", "+00:00"))
        for year in range(every, years, every):
            copy = json.loads(json.dumps(obs))
            copy["id"] = f"{obs['id']}-y{year}"
            copy["effectiveDateTime"] = (last - timedelta(days=round(365.25 * year))).strftime("%Y-%m-%dT%H:%M:%SZ")
            for place in [copy, *copy.get("component", [])]:
                q = place.get("valueQuantity")
                if q and isinstance(q.get("value"), (int, float)):
                    q["value"] = round(q["value"] * rng.uniform(0.9, 1.1), 1)
            out.append(copy)
    return out


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


def requests_for(base_url: str, resources: list[dict], only: str | None = None) -> list[tuple[str, str, str]]:
    """One (method, path, body) per patient-view service in the server's discovery document (`only`: that one)."""
    pid = next(r["id"] for r in resources if r["resourceType"] == "Patient")
    discovery = requests.get(f"{base_url}/cds-services", timeout=10).json()
    out = []
    for svc in discovery["services"]:
        if svc["hook"] != "patient-view" or only not in (None, svc["id"]):
            continue
        context = {"userId": "Practitioner/example", "patientId": pid}
        prefetch = {key: search(resources, render(q, context)) for key, q in svc.get("prefetch", {}).items()}
        body = {"hook": "patient-view", "hookInstance": HOOK_INSTANCE, "context": context, "prefetch": prefetch}
        out.append(("POST", f"/cds-services/{svc['id']}", json.dumps(body)))
    if not out:
        raise RuntimeError(f"the server declares no patient-view service{f' {only}' if only else ''}")
    return out


def check_answers(base_url: str, reqs: list[tuple[str, str, str]]) -> list[dict]:
    """Each request must answer 200 with a card before we time it (a 4xx is fast, not good)."""
    answers = []
    for _, path, body in reqs:
        body = body.replace(HOOK_INSTANCE, str(uuid.uuid4()))  # as the load generator does (bench/loadgen.py)
        r = requests.post(base_url + path, data=body, headers={"Content-Type": "application/json"}, timeout=30)
        if r.status_code != 200 or not r.json().get("cards"):
            raise RuntimeError(f"S1 {path}: {r.status_code} {r.text[:300]}")
        answers.append(r.json())
    return answers


def run(*, seconds: float, connections: int = 8, workers: int = 1, log_dir: Path | None = None,
        peer: bool = True) -> dict:
    """S1 (`S1_SERVICE`) on the service, on the floor (same server, same request and response bytes, no work)
    and on the peer (HealthChain's greeting under its own server, bench/peer.py), measured in alternating
    slices; then the same at one connection. One worker per server: the peer's server runs one process.
    Returns all three, the CPU per call of each and the ratios."""
    resources = synthetic_patient()
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="cds-bench-logs-"))
    rounds = max(2, round(seconds / 2.5))
    slice_s = max(1.0, seconds / rounds)
    with ExitStack() as stack:
        srv = stack.enter_context(Service(workers=workers, log_path=log_dir / "s1-service.log"))
        reqs = requests_for(srv.url, resources, only=S1_SERVICE)
        answers = check_answers(srv.url, reqs)
        floor_body = log_dir / "floor-body.json"
        floor_body.write_text(json.dumps(answers[0]))
        floor_srv = stack.enter_context(Service(workers=workers, app="bench.floor_app:create_floor_app()",
                                                env={"BENCH_FLOOR_BODY": str(floor_body)}, log_path=log_dir / "s1-floor.log"))
        targets = {"service": (srv.url, reqs), "floor": (floor_srv.url, reqs)}
        # The workers' CPU (the app's cost, as before nginx stood in front); nginx's share is given apart.
        cpu_of = {"service": lambda: sum(cpu_seconds(p) for p in srv.worker_pids()),
                  "floor": lambda: sum(cpu_seconds(p) for p in floor_srv.worker_pids())}
        proxy_of = {"service": lambda: sum(cpu_seconds(p) for p in srv.front_pids()),
                    "floor": lambda: sum(cpu_seconds(p) for p in floor_srv.front_pids())}
        peer_note = None
        if peer:
            try:
                peer_srv = stack.enter_context(PeerServer(log_path=log_dir / "s1-peer.log"))
                peer_reqs = [(m, peer_srv.path_for(p.rsplit("/", 1)[1]), b) for m, p, b in reqs]
                check_answers(peer_srv.url, peer_reqs)
                targets["peer"] = (peer_srv.url, peer_reqs)
                cpu_of["peer"] = lambda: sum(cpu_seconds(p) for p in peer_srv.all_pids())
            except Exception as exc:  # no network for pip, or HealthChain changed: the rest still runs
                peer_note = f"{type(exc).__name__}: {exc}"[:500]
        interleave(targets, rounds=1, slice_s=min(2.0, seconds / 3), connections=connections)  # warm-up
        proxy_before = {name: f() for name, f in proxy_of.items()}
        loaded = interleave(targets, rounds=rounds, slice_s=slice_s, connections=connections, cpu_of=cpu_of)
        proxy_ms = {name: round((f() - proxy_before[name]) * 1000 / max(1, loaded[name]["requests"]), 3)
                    for name, f in proxy_of.items()}
        single = interleave(targets, rounds=max(2, rounds // 2), slice_s=slice_s, connections=1)
    service, floor, peer_res = loaded["service"], loaded["floor"], loaded.get("peer")
    n_obs = sum(r["resourceType"] == "Observation" for r in resources)

    def ratio(a, b):
        return a / b if b else None

    return {
        "services": [p.rsplit("/", 1)[1] for _, p, _ in reqs], "observations": n_obs,
        "request_bytes": round(sum(len(b) for _, _, b in reqs) / len(reqs)),
        "workers": workers, "connections": connections, "slices": rounds, "slice_seconds": slice_s,
        "service": service, "floor": floor, "peer": peer_res, "peer_note": peer_note,
        "peer_server": f"HealthChain {PEER_VERSION}, healthchain serve (uvicorn, 1 process)" if peer_res else None,
        "p99_ratio": ratio(service["p99_ms"], floor["p99_ms"]),
        "p50_ratio": ratio(service["p50_ms"], floor["p50_ms"]),
        "throughput_ratio": ratio(service["rps"], floor["rps"]),
        "peer_throughput_ratio": ratio(service["rps"], peer_res["rps"]) if peer_res else None,
        "peer_p99_ratio": ratio(service["p99_ms"], peer_res["p99_ms"]) if peer_res else None,
        # CPU time the workers spent per request: unlike latency, it hardly moves when other
        # processes compete for the cores, so it is the steadiest figure on a shared machine.
        "service_cpu_ms_per_request": service["server_cpu_ms_per_request"],
        "floor_cpu_ms_per_request": floor["server_cpu_ms_per_request"],
        "peer_cpu_ms_per_request": peer_res["server_cpu_ms_per_request"] if peer_res else None,
        "cpu_ratio": ratio(service["server_cpu_ms_per_request"], floor["server_cpu_ms_per_request"]),
        # nginx's CPU per call in front of each (bench/slow_clients.py compares the servers).
        "service_proxy_cpu_ms_per_request": proxy_ms["service"], "floor_proxy_cpu_ms_per_request": proxy_ms["floor"],
        # One connection: the latency of a call on an idle server, without queueing behind others.
        "service_c1": single["service"], "floor_c1": single["floor"], "peer_c1": single.get("peer"),
        "p99_ratio_c1": ratio(single["service"]["p99_ms"], single["floor"]["p99_ms"]),
    }
