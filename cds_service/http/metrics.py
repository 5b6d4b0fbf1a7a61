"""Prometheus metrics at `/metrics`, one `CollectorRegistry` per app.

Exported: requests by route, service and status; request latency; the four pipeline stages
(prefetch, features, model, cards, from the call's timings); model inference time by model version;
time spent fetching from the EHR's FHIR server and the number of its requests; cards by indicator. Labels carry ids and codes only, never patient data.

Under gunicorn with several workers each process counts for itself: set PROMETHEUS_MULTIPROC_DIR
(an empty directory, before the server starts) and prometheus_client's multiprocess mode writes
the values to files there, which `/metrics` sums over every worker. `gunicorn_conf.py` empties the
directory at start and marks exited workers dead.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any, Sequence

from flask import Flask, Response, request

from cds_service.http.call_state import call_state
from cds_service.runtime import get_runtime

# Seconds. The spec expects answers "on the order of 500 ms" (PERF-1): resolution around that mark.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0)
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
STAGES = ("prefetch", "features", "model", "cards")


class Metrics:
    """The metric families of one app. `multiproc_dir` set → values come from every worker's files."""

    def __init__(self, multiproc_dir: str | None = None):
        # Imported here, not at module level: prometheus_client picks its value storage (memory or
        # multiprocess files) from PROMETHEUS_MULTIPROC_DIR when first imported, and `cds-service
        # serve` sets that variable after `cds_service` is imported (server.py).
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.multiproc_dir = multiproc_dir
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("cds_http_requests", "HTTP requests answered, by route, method, CDS service id and status.",
                                ["route", "method", "service", "status"], registry=r)
        self.latency = Histogram("cds_http_request_duration_seconds", "Time to answer an HTTP request.",
                                 ["route", "service"], buckets=LATENCY_BUCKETS, registry=r)
        self.stages = Histogram("cds_stage_duration_seconds", "Time in each stage of a service invocation.",
                                ["service", "stage"], buckets=STAGE_BUCKETS, registry=r)
        self.inference = Histogram("cds_model_inference_seconds", "Time of one model prediction, by model and version.",
                                   ["service", "model", "version"], buckets=STAGE_BUCKETS, registry=r)
        self.fhir = Histogram("cds_fhir_fetch_duration_seconds",
                              "Time one invocation spent fetching from the EHR's FHIR server (its requests run in parallel).",
                              ["service"], buckets=LATENCY_BUCKETS, registry=r)
        self.fhir_requests = Counter("cds_fhir_requests", "Requests sent to EHRs' FHIR servers.", ["service"], registry=r)
        self.cards = Counter("cds_cards", "Cards returned, by service and indicator.", ["service", "indicator"], registry=r)
        self.write_failures = Counter("cds_storage_write_failures",
                                      "Calls whose rows (audit, issued cards, explanation) could not be committed, "
                                      "by route; each was answered 500.", ["route"], registry=r)

    def observe_request(self, *, route: str, method: str, service: str | None, status: int, seconds: float) -> None:
        self.requests.labels(route, method, service or "", str(status)).inc()
        self.latency.labels(route, service or "").observe(seconds)

    def observe_invocation(self, service: str, timings: Any, prediction: Any = None, cards: Sequence[dict] = ()) -> None:
        """Stage times of one service call (`pipeline.Timings`), its FHIR fetching, prediction and cards."""
        for stage in STAGES:
            value = getattr(timings, stage, None)
            if isinstance(value, float):
                self.stages.labels(service, stage).observe(value)
        if prediction is not None:  # the model stage holds exactly one prediction
            self.inference.labels(service, str(prediction.model), str(prediction.version)).observe(timings.model)
        extra = getattr(timings, "extra", None) or {}
        calls = extra.get("fhir_calls")  # set by fhir_access when a fetcher ran
        if isinstance(calls, int) and calls > 0:
            self.fhir_requests.labels(service).inc(calls)
            if isinstance(extra.get("fhir"), float):
                self.fhir.labels(service).observe(extra["fhir"])
        for card in cards:
            self.cards.labels(service, str(card.get("indicator", ""))).inc()

    def exposition(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest  # lazy: see __init__

        if self.multiproc_dir:
            from prometheus_client import multiprocess  # lazy: see __init__

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiproc_dir)
            return generate_latest(registry)
        return generate_latest(self.registry)


def init_metrics(app: Flask, runtime, env: Any = None) -> Metrics:
    """Create the app's metrics and serve `/metrics`; `record_metrics` (a request hook) fills them."""
    env = os.environ if env is None else env
    metrics = Metrics(env.get("PROMETHEUS_MULTIPROC_DIR") or env.get("prometheus_multiproc_dir") or None)
    runtime.metrics = metrics

    @app.get("/metrics")
    def metrics_view():
        """Prometheus metrics (text exposition format); no patient data."""
        # Lazy: prometheus_client reads PROMETHEUS_MULTIPROC_DIR when first imported (see Metrics).
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)

    return metrics


def record_metrics(resp: Response) -> Response:
    """After-request hook: count the request; for a service call also its stages, FHIR fetching,
    prediction and cards (so it runs after `record_fhir_timings`)."""
    metrics, state = get_runtime().metrics, call_state()
    if metrics is None:  # registered only with metrics on; a Runtime built without them counts nothing
        return resp
    route = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
    metrics.observe_request(route=route, method=request.method, service=state.service_id, status=resp.status_code,
                            seconds=time.perf_counter() - state.started)
    if state.service_id and state.timings is not None:
        ok = resp.status_code == 200
        prediction = state.build_context.prediction if ok and state.build_context is not None else None
        metrics.observe_invocation(state.service_id, state.timings, prediction, _cards(resp) if ok else [])
    return resp


def _cards(resp) -> list[dict]:
    try:
        body = json.loads(resp.get_data())
    except (ValueError, TypeError):
        return []
    return [c for c in body.get("cards", []) if isinstance(c, dict)] if isinstance(body, dict) else []
