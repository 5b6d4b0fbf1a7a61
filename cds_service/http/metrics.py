"""Prometheus metrics at `/metrics`, one `CollectorRegistry` per app.

Exported: requests by route, service and status; request latency; the four pipeline stages
(prefetch, features, model, cards, from the call's timings); model inference time by model version;
time spent fetching from the EHR's FHIR server and the number of its requests; cards by indicator; the
alert load: cards per call by service and hook (for patient-view, cards per chart open: the histogram's
sum over its count), cards held back by the alert controls by reason, and which services run in shadow
mode. Labels carry ids and codes only, never patient data.

Under gunicorn with several workers each process counts for itself: set PROMETHEUS_MULTIPROC_DIR
(an empty directory, before the server starts) and prometheus_client's multiprocess mode writes
the values to files there, which `/metrics` sums over every worker. `gunicorn_conf.py` empties the
directory at start and marks exited workers dead.
"""
from __future__ import annotations

import os
import time
from typing import Any, Mapping, Sequence

from flask import Flask, Response, request

from cds_service.http.call_state import call_state
from cds_service.runtime import get_runtime

# Seconds. The spec expects answers "on the order of 500 ms" (PERF-1): resolution around that mark.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0)
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
STAGES = ("prefetch", "features", "model", "cards")
CARD_BUCKETS = (0, 1, 2, 3, 5, 10)


class Metrics:
    """The metric families of one app. `multiproc_dir` set → values come from every worker's files."""

    def __init__(self, multiproc_dir: str | None = None):
        # Imported here, not at module level: prometheus_client picks its value storage (memory or
        # multiprocess files) from PROMETHEUS_MULTIPROC_DIR when first imported, and `cds-service
        # serve` sets that variable after `cds_service` is imported (server.py).
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiproc_dir = multiproc_dir
        self._children: dict[tuple, Any] = {}
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
        self.cards_per_call = Histogram("cds_cards_per_call",
                                        "Cards returned by one service call, by service and hook (patient-view: per chart open).",
                                        ["service", "hook"], buckets=CARD_BUCKETS, registry=r)
        self.held_back = Counter("cds_cards_held_back",
                                 "Cards built but not returned, by service and reason: repeat, snoozed, silent (the "
                                 "service's [alerts]) or shadow (would have been shown; the service runs in shadow mode).",
                                 ["service", "reason"], registry=r)
        self.modes = _ServiceModes()
        r.register(self.modes)
        self.write_failures = Counter("cds_storage_write_failures",
                                      "Calls whose rows (audit, issued cards, explanation) could not be committed, "
                                      "by route; each was answered 500.", ["route"], registry=r)
        # storage/call_writes.py, after-answer: what a kill -9 would lose now, and what a failed write lost.
        # Labelled by database (sqlite, postgresql) so that, in multiprocess mode, their files are created
        # when first used in a worker, not when the app is built in gunicorn's master.
        self.call_writes_queued = Gauge("cds_call_writes_queued", "Calls answered whose rows are queued, not yet "
                                        "committed (summed over the workers).", ["database"], registry=r,
                                        multiprocess_mode="livesum")
        self.call_rows_lost = Counter("cds_call_rows_lost", "Rows (audit, issued card, explanation) of calls already "
                                      "answered that could not be committed.", ["database"], registry=r)

    def child(self, family, *labels: str):
        """`family.labels(*labels)`, looked up once per label set (prometheus_client's `labels` takes a
        lock and builds its key on every call; a service call touches a dozen children)."""
        key = (id(family), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = family.labels(*labels)
        return found

    def observe_request(self, *, route: str, method: str, service: str | None, status: int, seconds: float) -> None:
        self.child(self.requests, route, method, service or "", str(status)).inc()
        self.child(self.latency, route, service or "").observe(seconds)

    def observe_invocation(self, service: str, timings: Any, prediction: Any = None, cards: Sequence[dict] = ()) -> None:
        """Stage times of one service call (`pipeline.Timings`), its FHIR fetching, prediction and cards."""
        for stage in STAGES:
            value = getattr(timings, stage, None)
            if isinstance(value, float):
                self.child(self.stages, service, stage).observe(value)
        if prediction is not None:  # the model stage holds exactly one prediction
            self.child(self.inference, service, str(prediction.model), str(prediction.version)).observe(timings.model)
        extra = getattr(timings, "extra", None) or {}
        calls = extra.get("fhir_calls")  # set by fhir_access when a fetcher ran
        if isinstance(calls, int) and calls > 0:
            self.fhir_requests.labels(service).inc(calls)
            if isinstance(extra.get("fhir"), float):
                self.fhir.labels(service).observe(extra["fhir"])
        for card in cards:
            self.child(self.cards, service, str(card.get("indicator", ""))).inc()

    def observe_alerts(self, service: str, hook: str, returned: int, held_back: Mapping[str, int]) -> None:
        """One answered service call: the cards returned, and those the alert controls held back."""
        self.child(self.cards_per_call, service, hook).observe(returned)
        for reason, n in held_back.items():
            if n:
                self.child(self.held_back, service, reason).inc(n)

    def exposition(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest  # lazy: see __init__

        if self.multiproc_dir:
            from prometheus_client import multiprocess  # lazy: see __init__

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiproc_dir)
            registry.register(self.modes)
            return generate_latest(registry)
        return generate_latest(self.registry)


class _ServiceModes:
    """`cds_service_shadow_mode{service, hook}`: 1 for a service running in shadow mode (it returns no
    cards), 0 for a live one. Read from the configuration when scraped, so it needs no value files in
    multiprocess mode (the master builds the app before gunicorn empties that directory)."""

    def __init__(self):
        self.services: tuple[tuple[str, str, str], ...] = ()  # (id, hook, mode)

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily  # lazy: see Metrics.__init__

        family = GaugeMetricFamily("cds_service_shadow_mode", "1 for a service (id, hook) running in shadow mode: it "
                                   "computes and records its cards and returns none.", labels=["service", "hook"])
        for service, hook, mode in self.services:
            family.add_metric([service, hook], 1.0 if mode == "shadow" else 0.0)
        yield family


def init_metrics(app: Flask, runtime, env: Any = None) -> Metrics:
    """Create the app's metrics and serve `/metrics`; `record_metrics` (a request hook) fills them."""
    env = os.environ if env is None else env
    metrics = Metrics(env.get("PROMETHEUS_MULTIPROC_DIR") or env.get("prometheus_multiproc_dir") or None)
    runtime.metrics = metrics
    # Shadow mode left on in production shows here (and in the start-up log).
    metrics.modes.services = tuple((b.definition.id, b.definition.hook, b.definition.alerts.mode) for b in runtime.all_services())

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
        cards = (state.response_body or {}).get("cards", []) if ok else []
        metrics.observe_invocation(state.service_id, state.timings, prediction, cards)
        if ok and state.hook:
            metrics.observe_alerts(state.service_id, state.hook, len(cards), state.held_back)
    return resp
