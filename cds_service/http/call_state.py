"""What one HTTP call has learnt so far, in one typed object read through one accessor.

`begin_call` (the first before-request hook, `request_hooks.py`) creates it with the call's start
time; the views fill it in (who called, which service and hook, about which patient, the stage
timings, what the pipeline built and answered) and the after-request and teardown hooks read it
(call log, metrics, audit row, FHIR timings, explanation record, the closing transaction).

It lives on `flask.g`, Flask's storage for one request, under a single attribute; nothing else
in the package touches `g`. `call_state()` creates it when a request context has none yet (a
test's `test_request_context()`, or a hook of a request whose before-request hooks never ran).
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from flask import g

from cds_service.builders import BuildContext
from cds_service.pipeline import Timings
from cds_service.security.identity import ClientIdentity
from fhir_adapters.fetcher import HttpFetcher

_ATTRIBUTE = "cds_call"


@dataclass(slots=True, eq=False)
class CallState:
    started: float = field(default_factory=time.perf_counter)  # latencies are measured from here
    started_at: float = field(default_factory=time.time)  # wall clock of the start (the audit row's `at`)
    identity: ClientIdentity | None = None  # set once the JWT is verified (ANONYMOUS with auth off)
    auth_failure: str | None = None  # why the JWT was refused: audit row only, never the answer (SEC-10)
    service_id: str | None = None
    hook: str | None = None
    hook_instance: str | None = None
    patient_id: str | None = None  # hashed on the audit row; never logged
    timings: Timings | None = None  # stage times of a service invocation; None for any other call
    fetcher: HttpFetcher | None = None  # the call's FHIR fetcher: measured, then closed when the call ends
    build_context: BuildContext | None = None  # what the pipeline saw and predicted (explanation page, metrics)
    response_body: dict | None = None  # the CDS response as serialised once by the view
    # Cards the alert controls held back, by reason (repeat, snoozed, silent; shadow: would have been shown).
    held_back: Counter = field(default_factory=Counter)
    # Rows to commit in the call's closing transaction: `storage.call_writes.Write` items (a callable or its
    # Rows), typed there; storage imports this module, so naming the type here would be a cycle.
    writes: list[Any] = field(default_factory=list)
    audited: bool = False  # the audit row is queued (after-request and teardown must not both write it)


def call_state() -> CallState:
    """The state of the current request's call."""
    state = g.get(_ATTRIBUTE)
    if state is None:
        state = CallState()
        setattr(g, _ATTRIBUTE, state)
    return state


def begin_call() -> None:
    """Before-request hook: a fresh state, started now, before anything else runs (a fresh one even
    when an app context held open by a caller spans several requests and so keeps `g`)."""
    setattr(g, _ATTRIBUTE, CallState())
