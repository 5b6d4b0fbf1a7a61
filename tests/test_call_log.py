"""Latency budget: every invocation has a deadline, and the time spent in prefetch
resolution, feature extraction, the model and the card builder is in the JSON call log (no PHI)."""
from __future__ import annotations

import json
import logging
import os
import time

from cds_service.logs import JsonFormatter
from cds_testing.fhir_factory import ascvd_prefetch, hook_request

STAGES = ("prefetch", "features", "model", "cards")
ASCVD_ONLY = ["ascvd-10y-risk"]  # other services are irrelevant here


def _call_record(caplog):
    records = [r for r in caplog.records if getattr(r, "event", None) == "call"]
    assert len(records) == 1
    return records[0]


def test_call_log_line_carries_stage_timings_pid_and_no_phi(make_app, caplog):
    app = make_app(services=ASCVD_ONLY)
    body = hook_request(prefetch=ascvd_prefetch(birth_date="1961-07-14"))
    with caplog.at_level(logging.INFO, logger="cds_service"):
        resp = app.test_client().post("/cds-services/ascvd-10y-risk", json=body)
    assert resp.status_code == 200 and resp.get_json()["cards"]
    record = _call_record(caplog)
    timings = record.timings
    assert set(STAGES) <= set(timings)
    assert all(timings[s] >= 0 for s in STAGES)
    assert timings["model"] > 0 and timings["features"] > 0  # the equation and the extractors really ran
    assert sum(timings[s] for s in STAGES) <= record.latency_ms + 0.05  # stages happen inside the call

    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "call" and line["service"] == "ascvd-10y-risk" and line["status"] == 200
    assert line["hookInstance"] == body["hookInstance"] and line["timings"] == timings
    assert line["pid"] == os.getpid()  # which worker served the call
    assert "1961-07-14" not in json.dumps(line)


def test_error_calls_are_logged_without_timings(make_app, caplog):
    app = make_app(services=ASCVD_ONLY)
    with caplog.at_level(logging.INFO, logger="cds_service"):
        resp = app.test_client().post("/cds-services/ascvd-10y-risk", data=b"{", content_type="application/json")
    assert resp.status_code == 400
    record = _call_record(caplog)
    assert record.status == 400 and record.timings is None and record.latency_ms >= 0


def test_every_invocation_gets_the_configured_deadline(make_app):
    """The fetcher receives an absolute monotonic deadline = start of the call + deadline_s."""
    app = make_app(services=ASCVD_ONLY, deadline_s=0.75)
    seen = []

    def spy_factory(request, identity, deadline=None):
        seen.append((deadline, time.monotonic()))
        return None

    app.extensions["cds"].fetcher_factory = spy_factory
    resp = app.test_client().post("/cds-services/ascvd-10y-risk", json=hook_request(prefetch=ascvd_prefetch()))
    assert resp.status_code == 200
    ((deadline, called_at),) = seen
    assert deadline is not None and 0.5 < deadline - called_at <= 0.75


def test_call_log_line_follows_the_loggers_level_and_filters(make_app, caplog):
    """The call line goes through the logger as `log.info` would: not written below the configured level, and a
    filter on the logger (an operator's) still decides; the record names where it was made."""
    app = make_app(services=ASCVD_ONLY)
    body = hook_request(prefetch=ascvd_prefetch())
    with caplog.at_level(logging.WARNING, logger="cds_service"):
        assert app.test_client().post("/cds-services/ascvd-10y-risk", json=body).status_code == 200
    assert not [r for r in caplog.records if getattr(r, "event", None) == "call"]

    logger, dropped = logging.getLogger("cds_service"), []

    def drop_calls(record):
        if getattr(record, "event", None) == "call":
            dropped.append(record)
            return False
        return True

    logger.addFilter(drop_calls)
    try:
        with caplog.at_level(logging.INFO, logger="cds_service"):
            assert app.test_client().post("/cds-services/ascvd-10y-risk", json=body).status_code == 200
    finally:
        logger.removeFilter(drop_calls)
    assert len(dropped) == 1 and not [r for r in caplog.records if getattr(r, "event", None) == "call"]
    assert dropped[0].levelno == logging.INFO and dropped[0].funcName == "log_call"
    assert dropped[0].pathname.endswith("call_log.py")
