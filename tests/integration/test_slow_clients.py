"""Slow and hostile clients cannot freeze the production server.

`cds-service serve` as deployed (nginx in front of gunicorn, 2 workers × 4 threads) with 16 slow
connections open on loopback: 8 sending one header line every 2 s, 8 sending their body at 1 byte/s.
gunicorn alone gave each of them a worker thread, and with 8 threads in all `/healthz` timed out for as
long as they stayed. Here health probes and hook calls must still answer in well under a second; the
trickled headers are cut at `header_timeout_s` (a deadline from the first byte, not reset per line), a
body that stops for `body_timeout_s` is cut, and a body still trickling is held by nginx, never by a worker.
"""
from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from cds_testing.fhir_factory import ascvd_prefetch, hook_request
from cds_testing.optional import missing
from cds_testing.servers import cds_service
from cds_testing.slow_clients import SlowClients

pytestmark = pytest.mark.integration

HEADER_TIMEOUT_S = 5
BODY_TIMEOUT_S = 3
HOOK = "/cds-services/ascvd-10y-risk"
QUICK_S = 1.0  # an idle call takes a few ms; the freeze this guards against lasted until the clients left


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    from cds_service.server.proxy import find_nginx

    if find_nginx() is None:
        missing("nginx is not installed (tests/setup.d/50-nginx.sh installs it)")
    tmp = tmp_path_factory.mktemp("slow")
    env = {"CDS_AUTH_REQUIRED": "false", "CDS_DATABASE_URL": f"sqlite:///{tmp}/cds.sqlite3",
           "CDS_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S), "CDS_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
           "CDS_WORKERS": "2", "CDS_THREADS": "4"}
    with cds_service(env, workers=2, log_path=tmp / "service.log") as base:
        yield base


def _body() -> bytes:
    body = hook_request(prefetch=ascvd_prefetch())
    body["hookInstance"] = str(uuid.uuid4())
    return json.dumps(body).encode()


def _timed(call) -> tuple[float, requests.Response]:
    started = time.monotonic()
    resp = call()
    return time.monotonic() - started, resp


def _assert_answers_quickly(base: str) -> None:
    for _ in range(3):
        took, resp = _timed(lambda: requests.get(f"{base}/healthz", timeout=5, headers={"Connection": "close"}))
        assert resp.status_code == 200 and took < QUICK_S, (resp.status_code, took)
        took, resp = _timed(lambda: requests.post(base + HOOK, data=_body(), timeout=5,
                                                  headers={"Content-Type": "application/json", "Connection": "close"}))
        assert resp.status_code == 200 and resp.json()["cards"] and took < QUICK_S, (resp.status_code, took)


def test_sixteen_slow_clients_neither_freeze_the_service_nor_stay_forever(service):
    port = int(service.rsplit(":", 1)[1])
    with SlowClients("127.0.0.1", port, HOOK, _body(), headers=8, bodies=8, header_interval_s=2.0, body_rate=1.0) as slow, \
            SlowClients("127.0.0.1", port, HOOK, _body(), headers=0, bodies=2, body_rate=0.2) as stalled:
        time.sleep(1.0)  # every slow connection is open and trickling
        assert slow.open_count() == 16
        _assert_answers_quickly(service)

        deadline = time.monotonic() + HEADER_TIMEOUT_S + 4
        while slow.open_count("headers") and time.monotonic() < deadline:
            time.sleep(0.2)
        _assert_answers_quickly(service)  # still, with the trickling bodies open

        # The header block must be complete HEADER_TIMEOUT_S after the first byte, however steadily it trickles.
        header_cuts = slow.cut_times("headers")
        assert all(t is not None and HEADER_TIMEOUT_S - 0.5 <= t <= HEADER_TIMEOUT_S + 3 for t in header_cuts), header_cuts
        # A body may pause at most BODY_TIMEOUT_S between reads (its first byte comes 5 s after the headers).
        body_cuts = stalled.cut_times("body")
        assert all(t is not None and BODY_TIMEOUT_S - 0.5 <= t <= BODY_TIMEOUT_S + 2 for t in body_cuts), body_cuts
        # A body still arriving at 1 byte/s is within the rules: nginx holds it (no worker thread does).
        assert slow.open_count("body") == 8
