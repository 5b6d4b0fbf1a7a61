"""A loopback FHIR server for the worker-class comparison: answers reads and searches from the S1
patient after a fixed delay (the EHR's FHIR latency), so a worker spends most of a call waiting."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import s1_patient_view as s1


class FhirStub:
    def __init__(self, resources: list[dict], latency_s: float = 0.05):
        self.resources, self.latency_s = resources, latency_s
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                time.sleep(stub.latency_s)
                query = self.path.split("/", 2)[-1] if self.path.startswith("/fhir/") else self.path.lstrip("/")
                found = s1.search(stub.resources, query)
                body = json.dumps(found).encode() if found else b'{"resourceType":"OperationOutcome","issue":[]}'
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.request_queue_size = 512
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/fhir"

    def __enter__(self) -> "FhirStub":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
