"""Fetch-path benchmark: 5 prefetch queries fetched in parallel vs one round trip.

A tiny threaded http.server on 127.0.0.1 answers every GET after a fixed 50 ms (the EHR's FHIR
latency). Each run builds the objects one invocation builds (FhirClient + HttpFetcher), fetches,
and closes them; "one round trip" is that same path with one query, and a bare http.client GET is
shown as the floor. Target: the 5-query fetch within 1.3x one round trip.

    .venv/bin/python bench/fetch_path.py [--runs 30] [--latency-ms 50]

Prints a table and writes bench/results/fetch_path.json.
"""
from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fhir_adapters.client import FhirClient  # noqa: E402
from fhir_adapters.fetcher import HttpFetcher  # noqa: E402

QUERIES = {
    "patient": "Patient/p1",
    "lipids": "Observation?patient=p1&code=http://loinc.org|2093-3,http://loinc.org|2085-9&_sort=-date",
    "bp": "Observation?patient=p1&code=http://loinc.org|85354-9&_sort=-date",
    "conditions": "Condition?patient=p1",
    "medications": "MedicationRequest?patient=p1&status=active",
}


def _stub(latency_s: float) -> ThreadingHTTPServer:
    patient = json.dumps({"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1960-01-01"}).encode()
    bundle = json.dumps({"resourceType": "Bundle", "type": "searchset", "total": 1, "entry": [{"resource": {
        "resourceType": "Observation", "id": "o1", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "2093-3"}]},
        "effectiveDateTime": "2026-01-01", "valueQuantity": {"value": 200, "unit": "mg/dL", "code": "mg/dL"}}}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802 (http.server's naming)
            time.sleep(latency_s)
            body = patient if "/Patient/" in self.path else bundle
            self.send_response(200)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _one_invocation(base: str, queries: dict[str, str]) -> float:
    started = time.perf_counter()
    deadline = time.monotonic() + 5.0
    client = FhirClient(base, token="bench-token", allow_http=True, deadline=deadline, timeout=(1.0, 2.0))
    fetcher = HttpFetcher(client, deadline=deadline, max_workers=6)
    try:
        results = fetcher.fetch_all(queries)
    finally:
        fetcher.close()
    elapsed = time.perf_counter() - started
    errors = [r.error for r in results.values() if r.error]
    if errors:
        raise RuntimeError(f"fetch failed: {errors}")
    return elapsed


def _bare_round_trip(port: int) -> float:
    """One GET with http.client and nothing else: the floor a fetch path can approach."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/fhir/R4/Patient/p1", headers={"Accept": "application/fhir+json"})
    conn.getresponse().read()
    conn.close()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--latency-ms", type=float, default=50.0)
    args = ap.parse_args(argv)
    server = _stub(args.latency_ms / 1000)
    base = f"http://127.0.0.1:{server.server_address[1]}/fhir/R4"
    try:
        for _ in range(3):  # warm-up: imports, first connections, thread start-up
            _one_invocation(base, QUERIES)
        bare, single, five = [], [], []
        for _ in range(args.runs):  # interleaved, so machine load hits all alike
            bare.append(_bare_round_trip(server.server_address[1]))
            single.append(_one_invocation(base, {"patient": QUERIES["patient"]}))
            five.append(_one_invocation(base, QUERIES))
    finally:
        server.shutdown()
    floor, one, par = statistics.median(bare), statistics.median(single), statistics.median(five)
    result = {
        "latency_ms": args.latency_ms, "runs": args.runs, "queries": len(QUERIES),
        "bare_get_ms": {"median": round(floor * 1000, 2), "p90": round(_p90(bare) * 1000, 2)},
        "one_round_trip_ms": {"median": round(one * 1000, 2), "p90": round(_p90(single) * 1000, 2)},
        "five_queries_ms": {"median": round(par * 1000, 2), "p90": round(_p90(five) * 1000, 2)},
        "sequential_estimate_ms": round(one * len(QUERIES) * 1000, 2),
        "ratio_to_one_round_trip": round(par / one, 3), "ratio_to_bare_get": round(par / floor, 3), "target": 1.3,
    }
    print(f"{'path':<28}{'median ms':>12}{'p90 ms':>10}")
    print(f"{'bare GET (http.client)':<28}{result['bare_get_ms']['median']:>12.1f}{result['bare_get_ms']['p90']:>10.1f}")
    print(f"{'one round trip (1 query)':<28}{result['one_round_trip_ms']['median']:>12.1f}{result['one_round_trip_ms']['p90']:>10.1f}")
    print(f"{'5 queries, parallel':<28}{result['five_queries_ms']['median']:>12.1f}{result['five_queries_ms']['p90']:>10.1f}")
    print(f"{'5 queries, one by one (est.)':<28}{result['sequential_estimate_ms']:>12.1f}")
    print(f"ratio 5-query fetch / one round trip: {result['ratio_to_one_round_trip']:.3f} (target <= 1.3); "
          f"/ bare GET: {result['ratio_to_bare_get']:.3f}")
    out = ROOT / "bench" / "results" / "fetch_path.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


def _p90(xs: list[float]) -> float:
    return sorted(xs)[int(0.9 * (len(xs) - 1))]


if __name__ == "__main__":
    sys.exit(main())
