"""FhirClient over real sockets: the real FHIR server's paging and references, and a
loopback server that misbehaves on purpose. `responses` (the unit tests) replaces urllib3, so the
deadline-capped socket timeouts, the body read under the deadline and urllib3's Retry are only
exercised here."""
from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from cds_testing import synthetic
from fhir_adapters.client import FhirClient
from fhir_adapters.errors import FhirConnectionError, FhirHttpError, FhirNotFound, FhirTimeout

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def loaded(fhir_server, tmp_path_factory):
    files = synthetic.generate(tmp_path_factory.mktemp("carebundle-client"), count=2, seed=7)
    return synthetic.load(fhir_server, files, seed=7)


def _client(base, **kw):
    return FhirClient(base, allow_http=True, deadline=time.monotonic() + kw.pop("seconds", 10), backoff_s=0, **kw)


# ---- the real FHIR server ----------------------------------------------------------------------------


def test_prefetch7_real_next_links_are_followed_to_the_same_result(fhir_server, loaded):
    pid = loaded[0].patient_id
    whole = _client(fhir_server).search(f"Observation?patient={pid}&_count=200")
    paged = _client(fhir_server, max_pages=20).search(f"Observation?patient={pid}&_count=5")
    assert paged.incomplete is None and paged.pages == -(-len(whole.resources) // 5) > 1
    assert [r["id"] for r in paged.resources] == [r["id"] for r in whole.resources]
    assert all(r["subject"]["reference"] == f"Patient/{pid}" for r in paged.resources)


def test_prefetch7_page_cap_against_the_real_server(fhir_server, loaded):
    result = _client(fhir_server, max_pages=3).search(f"Observation?patient={loaded[0].patient_id}&_count=5")
    assert len(result.resources) == 15 and "more than 3 pages" in result.incomplete


def test_bare_patient_ids_are_sent_typed(fhir_server, loaded):
    """The server matches nothing for `patient=<id>`; the client sends `Patient/<id>` and gets the data."""
    pid = loaded[1].patient_id
    query = "Observation?patient={}&code=http://loinc.org|72166-2"
    bare = requests.get(f"{fhir_server}/{query.format(pid)}", timeout=10).json()
    typed = requests.get(f"{fhir_server}/{query.format('Patient/' + pid)}", timeout=10).json()
    assert bare.get("total") == 0 and typed.get("total") == 1
    result = _client(fhir_server).fetch(f"Observation?patient={pid}&code=http://loinc.org|72166-2")
    assert [r["code"]["coding"][0]["code"] for r in result.resources] == ["72166-2"]


def test_read_and_not_found(fhir_server, loaded):
    assert _client(fhir_server).fetch(f"Patient/{loaded[0].patient_id}").resources[0]["resourceType"] == "Patient"
    with pytest.raises(FhirNotFound):
        _client(fhir_server).fetch("Patient/does-not-exist")


# ---- a loopback server that misbehaves ------------------------------------------------------------------


class Misbehaving:
    """Paths: /slow (3 s before answering), /drip (a byte every 0.2 s), /flaky (503 once, then 200),
    /busy (503 with Retry-After: 10), /redirect (302)."""

    def __init__(self):
        self.hits: dict[str, int] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802
                try:
                    self._answer()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up, as it should

            def _answer(self):
                path = self.path.split("?")[0].rsplit("/", 1)[-1]
                outer.hits[path] = outer.hits.get(path, 0) + 1
                body = b'{"resourceType":"Patient","id":"p1"}'
                if path == "slow":
                    time.sleep(3)
                if path == "flaky" and outer.hits[path] == 1 or path == "busy":
                    return self._send(503, b"", {"Retry-After": "10"} if path == "busy" else {})
                if path == "redirect":
                    return self._send(302, b"", {"Location": "http://127.0.0.1:9/elsewhere"})
                if path == "drip":
                    self.send_response(200)
                    self.send_header("Content-Length", "100")
                    self.end_headers()
                    for _ in range(25):
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        time.sleep(0.2)
                    return None
                return self._send(200, body, {})

            def _send(self, status, body, headers):
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/fhir"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def bad():
    server = Misbehaving()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_read_timeout_is_capped_by_the_deadline(bad):
    started = time.perf_counter()
    with pytest.raises(FhirTimeout):
        _client(bad.base, seconds=0.4, timeout=(1.0, 30.0)).fetch("Patient/slow")
    assert time.perf_counter() - started < 1.5  # not the 30 s read timeout, not the 3 s answer


def test_a_dripping_body_is_cut_at_the_deadline(bad):
    started = time.perf_counter()
    with pytest.raises(FhirTimeout):  # the socket timeout (capped by the deadline) or the deadline check fires
        _client(bad.base, seconds=0.6, timeout=(1.0, 30.0)).fetch("Patient/drip")
    assert time.perf_counter() - started < 2.0  # the whole body would take 5 s


def test_503_is_retried_by_urllib3_then_succeeds(bad):
    assert _client(bad.base, retries=2).fetch("Patient/flaky").resources[0]["id"] == "p1"
    assert bad.hits["flaky"] == 2


def test_retry_after_beyond_the_deadline_is_not_waited_for(bad):
    started = time.perf_counter()
    with pytest.raises(FhirHttpError) as err:
        _client(bad.base, retries=3, seconds=1.0).fetch("Patient/busy")
    assert err.value.status == 503 and bad.hits["busy"] == 1 and time.perf_counter() - started < 1.0


def test_redirect_is_not_followed(bad):
    with pytest.raises(FhirHttpError) as err:
        _client(bad.base).fetch("Patient/redirect")
    assert err.value.status == 302 and bad.hits["redirect"] == 1


def test_connection_refused():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FhirConnectionError):
        _client(f"http://127.0.0.1:{port}/fhir").fetch("Patient/p1")
