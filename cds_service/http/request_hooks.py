"""Every app-wide request hook, registered here and only here, in the order it runs.

Flask runs `before_request` functions in the order they were registered, but `after_request` and
`teardown_request` functions in the REVERSE order. The lists below are written in the order the
hooks run, and `register_request_hooks` registers the after and teardown lists reversed, so
that what you read is what happens. The order matters:

before each request
  1. begin_call          the call's state and start time exist before anything else runs
  2. answer_preflight    a CORS preflight is answered here; the hooks after it do not run for it

after each response (also the error handlers' 4xx/5xx answers)
  1. record_fhir_timings the FHIR request count and time onto the call's timings: the metrics and
                         the call log below read them
  2. write_audit_row     queues the audit row
  3. page hooks          the pages' (`cds_service.ui`): queue the explanation record
  4. flush_writes        after every hook that queues rows: commits them (and the view's) in one
                         transaction before the answer leaves; if that fails the answer becomes a
                         500, which the hooks below then count, log and send
  5. record_metrics      Prometheus counters and histograms
  6. log_call            the JSON call log line
  7. add_cors_headers    CORS headers for an allow-listed Origin

at teardown (also after an exception that no handler turned into a response)
  1. audit_unanswered    the audit row of a call that ended in an unhandled exception
  2. close_fetcher       releases the FHIR fetcher's HTTP session
  3. flush_writes_on_teardown   LAST: commits what is still queued

Blueprint-scoped hooks (the pages' security headers, `ui/blueprint.py`) run before all of the
after-request hooks above, and only for their own blueprint's pages.
"""
from __future__ import annotations

from typing import Callable, Sequence

from flask import Flask, Response

from cds_service.fhir_access.fetchers import close_fetcher, record_fhir_timings
from cds_service.http.call_log import log_call
from cds_service.http.call_state import begin_call
from cds_service.http.cors import add_cors_headers, answer_preflight
from cds_service.http.metrics import record_metrics
from cds_service.storage.audit import audit_unanswered, write_audit_row
from cds_service.storage.call_writes import flush_writes, flush_writes_on_teardown

AfterHook = Callable[[Response], Response]


def hook_order(page_hooks: Sequence[AfterHook] = ()) -> tuple[tuple, tuple, tuple]:
    """(before, after, teardown) hooks, each in the order it runs."""
    before = (begin_call, answer_preflight)
    after = (record_fhir_timings, write_audit_row, *page_hooks, flush_writes, record_metrics, log_call,
             add_cors_headers)
    teardown = (audit_unanswered, close_fetcher, flush_writes_on_teardown)
    return before, after, teardown


def register_request_hooks(app: Flask, *, page_hooks: Sequence[AfterHook] = ()) -> None:
    """Register the app-wide hooks so that they run in `hook_order`. `page_hooks`: after-request
    hooks of the pages, which may queue rows and so run before the flush."""
    before, after, teardown = hook_order(page_hooks)
    for hook in before:
        app.before_request(hook)
    for hook in reversed(after):
        app.after_request(hook)
    for hook in reversed(teardown):
        app.teardown_request(hook)
