"""The README's run path: `cds-service serve` under gunicorn answers a synthetic patient end to end."""
import json

import pytest
import requests

from cds_testing.fhir_factory import ascvd_prefetch, hook_request
from cds_testing.servers import cds_service
from cds_testing.spec_rules import assert_no_empty_members

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    env = {"CDS_AUTH_REQUIRED": "false", "CDS_DATABASE_URL": f"sqlite:///{tmp}/cds.sqlite3",
           "CDS_CORS_ORIGINS": '["https://sandbox.cds-hooks.org"]'}
    with cds_service(env, log_path=tmp / "service.log") as base:
        yield base, tmp


def test_discovery_lists_ascvd_under_gunicorn(service):
    base, _ = service
    resp = requests.get(f"{base}/cds-services", timeout=5)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("application/json")
    assert "ascvd-10y-risk" in {s["id"] for s in resp.json()["services"]}


def test_patient_view_returns_a_spec_valid_card(service):
    base, _ = service
    resp = requests.post(f"{base}/cds-services/ascvd-10y-risk", json=hook_request(prefetch=ascvd_prefetch()), timeout=5)
    assert resp.status_code == 200
    body = resp.json()
    assert_no_empty_members(body)
    (card,) = body["cards"]
    assert card["extension"]["org.cdsml.prediction"]["model"] == "pce-goff-2013"


def test_errors_are_operation_outcomes_over_the_wire(service):
    base, _ = service
    resp = requests.post(f"{base}/cds-services/ascvd-10y-risk", data=b"{", headers={"Content-Type": "application/json"}, timeout=5)
    assert resp.status_code == 400 and resp.json()["resourceType"] == "OperationOutcome"
    resp = requests.post(f"{base}/cds-services/ascvd-10y-risk", data=b"x" * (6 * 1024 * 1024), timeout=10)
    assert resp.status_code == 413


def test_call_log_is_json_with_correlation_id_and_no_phi(service):
    base, tmp = service
    body = hook_request(prefetch=ascvd_prefetch(birth_date="1961-07-14"))
    body["hookInstance"] = "log-check-instance-1"
    requests.post(f"{base}/cds-services/ascvd-10y-risk", json=body, timeout=5)
    lines = [json.loads(line) for line in (tmp / "service.log").read_text().splitlines() if line.startswith("{")]
    calls = [entry for entry in lines if entry.get("hookInstance") == "log-check-instance-1"]
    assert calls and calls[0]["service"] == "ascvd-10y-risk" and calls[0]["status"] == 200 and "latency_ms" in calls[0]
    assert "1961-07-14" not in (tmp / "service.log").read_text()
