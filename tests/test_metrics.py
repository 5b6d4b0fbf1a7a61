"""Operations: Prometheus `/metrics`, `/healthz`, `/readyz`. The multi-worker sum
under gunicorn is tested in test_cli_live.py."""
from __future__ import annotations

import re

from sqlalchemy import create_engine

from cds_service.http.metrics import Metrics
from cds_service.pipeline import Timings
from cds_testing.fhir_factory import ascvd_prefetch, hook_request


def _sample(text: str, name: str, **labels) -> float | None:
    """The value of one sample in the exposition text (labels in any order)."""
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}\{{(.*)\}} (\S+)$", line)
        if m and dict(re.findall(r'(\w+)="([^"]*)"', m.group(1))) == {k: str(v) for k, v in labels.items()}:
            return float(m.group(2))
    return None


def test_metrics_count_requests_by_service_and_status_and_time_each_stage(client):
    assert client.post("/cds-services/ascvd-10y-risk", json=hook_request(prefetch=ascvd_prefetch())).status_code == 200
    assert client.post("/cds-services/ascvd-10y-risk", json=hook_request()).status_code == 412  # PREFETCH-5
    assert client.post("/cds-services/no-such-service", json=hook_request()).status_code == 404
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/plain; version=")
    text = resp.get_data(as_text=True)
    route = "/cds-services/<service_id>"
    assert _sample(text, "cds_http_requests_total", route=route, method="POST", service="ascvd-10y-risk", status=200) == 1
    assert _sample(text, "cds_http_requests_total", route=route, method="POST", service="ascvd-10y-risk", status=412) == 1
    assert _sample(text, "cds_http_requests_total", route=route, method="POST", service="", status=404) == 1  # unknown id: no label
    assert _sample(text, "cds_http_request_duration_seconds_count", route=route, service="ascvd-10y-risk") == 2
    for stage in ("prefetch", "features", "model", "cards"):
        assert _sample(text, "cds_stage_duration_seconds_count", service="ascvd-10y-risk", stage=stage) == 2, stage
    # Model inference by model version: only the call that made a prediction.
    assert _sample(text, "cds_model_inference_seconds_count", service="ascvd-10y-risk", model="pce-goff-2013",
                   version="2013.1") == 1
    assert _sample(text, "cds_cards_total", service="ascvd-10y-risk", indicator="info") == 1
    assert "no-such-service" not in text  # labels only from loaded service ids


def test_each_app_has_its_own_registry(make_app):
    """No module-level state: two apps in one process count separately."""
    first, second = make_app(), make_app()
    first.test_client().get("/healthz")
    first.test_client().get("/healthz")
    second.test_client().get("/healthz")
    count = lambda app: _sample(app.test_client().get("/metrics").get_data(as_text=True),  # noqa: E731
                                "cds_http_requests_total", route="/healthz", method="GET", service="", status=200)
    assert count(first) == 2 and count(second) == 1


def test_fhir_fetch_time_and_request_count_are_recorded():
    """FHIR call time comes from fhir_access (the call timings' extra: fhir seconds, fhir_calls)."""
    metrics = Metrics()
    t = Timings(prefetch=0.3, features=0.001, model=0.002, cards=0.001)
    t.extra.update(fhir=0.25, fhir_calls=6)
    metrics.observe_invocation("svc", t)
    metrics.observe_invocation("svc", Timings())  # prefetched: no FHIR request, nothing recorded
    text = metrics.exposition().decode()
    assert _sample(text, "cds_fhir_requests_total", service="svc") == 6
    assert _sample(text, "cds_fhir_fetch_duration_seconds_count", service="svc") == 1
    assert _sample(text, "cds_fhir_fetch_duration_seconds_sum", service="svc") == 0.25
    assert _sample(text, "cds_fhir_fetch_duration_seconds_bucket", service="svc", le="0.25") == 1


def test_healthz_is_alive(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.get_json() == {"status": "ok"}


def test_readyz_reports_models_and_the_database(app):
    resp = app.test_client().get("/readyz")
    body = resp.get_json()
    assert resp.status_code == 200 and body["status"] == "ok" and body["database"] is True
    assert "pce-goff-2013" in body["models"] and body["services"] == len(app.extensions["cds"].all_services())


def test_readyz_is_503_when_the_database_is_unreachable(app, tmp_path):
    runtime = app.extensions["cds"]
    runtime.engine = create_engine(f"sqlite:///{tmp_path}/missing-dir/cds.sqlite3")  # cannot be opened
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503 and resp.get_json()["status"] == "unavailable" and resp.get_json()["database"] is False
    assert app.test_client().get("/healthz").status_code == 200  # alive, just not ready
