"""One JSON log line per call: method, service, hook, hookInstance, status, latency, stage timings,
the number of FHIR requests and the cards held back by the alert controls. No patient data and no
token: ids and numbers only."""
from __future__ import annotations

import logging
import time

from flask import Response, request

from cds_service.http.call_state import call_state

log = logging.getLogger("cds_service")


def log_call(resp: Response) -> Response:
    """After-request hook; it reads the FHIR timings, so it runs after `record_fhir_timings`."""
    if not log.isEnabledFor(logging.INFO):  # the check `log.info` makes first
        return resp
    state = call_state()
    timings = state.timings
    # What `log.info` does (the record through the logger's filters and handlers, and its parents'), without
    # its walk up the stack for the caller's file and line: the line has neither, and it is known.
    log.handle(log.makeRecord(log.name, logging.INFO, __file__, 0, "call", (), None, "log_call", {
        "event": "call", "method": request.method, "path": request.path if not state.service_id else None,
        "service": state.service_id, "hook": state.hook, "hookInstance": state.hook_instance,
        "status": resp.status_code, "latency_ms": round((time.perf_counter() - state.started) * 1000, 2),
        "timings": {k: round(v * 1000, 2) for k, v in {**vars(timings), **timings.extra}.items()
                    if isinstance(v, float)} if timings else None,
        "fhir_calls": timings.extra.get("fhir_calls") if timings else None,  # outbound FHIR GETs
        # Cards the service's [alerts] held back, by reason: why a call answered with fewer cards (or none).
        "held_back": dict(state.held_back) or None,
    }))
    return resp
