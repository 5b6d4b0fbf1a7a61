"""The README's run path: `cds-service serve` under gunicorn answers a synthetic patient end to end, and
believes forwarded headers only from the proxies in `forwarded_allow_ips`."""
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


def _link_scheme(base: str, claim: dict[str, str] | None = None) -> str:
    """The scheme of the card's explanation link when the caller claims `X-Forwarded-Proto: https`
    (development mode, no public_base_url: links follow the request as gunicorn describes it)."""
    resp = requests.post(f"{base}/cds-services/ascvd-10y-risk", json=hook_request(prefetch=ascvd_prefetch()),
                         headers=claim or {"X-Forwarded-Proto": "https"}, timeout=5)
    (card,) = resp.json()["cards"]
    return next(link["url"] for link in card["links"] if link["type"] == "absolute").split("://")[0]


def test_forwarded_headers_are_believed_only_from_configured_proxies(service, tmp_path):
    """gunicorn's default believes X-Forwarded-Proto from 127.0.0.1, so anyone on the host could change the
    scheme (and, without public_base_url, the links and the JWT audience): only a configured proxy is believed."""
    base, _ = service
    assert _link_scheme(base) == "http"  # forwarded_allow_ips empty by default: ignored from 127.0.0.1
    # gunicorn also takes these as the scheme; nginx in front drops them from every client.
    assert _link_scheme(base, {"X-Forwarded-Ssl": "on"}) == "http"
    assert _link_scheme(base, {"X-Forwarded-Protocol": "ssl"}) == "http"
    env = {"CDS_AUTH_REQUIRED": "false", "CDS_DATABASE_URL": f"sqlite:///{tmp_path}/cds.sqlite3",
           "CDS_FORWARDED_ALLOW_IPS": '["127.0.0.1"]'}
    with cds_service(env, workers=1, log_path=tmp_path / "service.log") as behind_proxy:
        assert _link_scheme(behind_proxy) == "https"  # 127.0.0.1 is the configured proxy
