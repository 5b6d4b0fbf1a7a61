"""The app-wide request hooks run in the order `cds_service/http/request_hooks.py` documents, and
the per-call state is one object, created fresh for every request."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from cds_service.fhir_access.fetchers import close_fetcher, record_fhir_timings
from cds_service.http import request_hooks
from cds_service.http.call_log import log_call
from cds_service.http.call_state import begin_call, call_state
from cds_service.http.cors import add_cors_headers, answer_preflight
from cds_service.http.metrics import record_metrics
from cds_service.storage.audit import audit_unanswered, write_audit_row
from cds_service.storage.call_writes import flush_writes, flush_writes_on_teardown
from cds_service.ui import record_explanation

PACKAGE = Path(__file__).resolve().parent.parent / "cds_service"

BEFORE = [begin_call, answer_preflight]
AFTER = [record_fhir_timings, write_audit_row, record_explanation, flush_writes, record_metrics, log_call,
         add_cors_headers]
TEARDOWN = [audit_unanswered, close_fetcher, flush_writes_on_teardown]


def _running_order(app):
    """Each phase's app-wide hooks in the order Flask runs them (after/teardown: reverse of registration)."""
    return (list(app.before_request_funcs[None]), list(reversed(app.after_request_funcs[None])),
            list(reversed(app.teardown_request_funcs[None])))


def test_the_hooks_run_in_the_documented_order(make_app):
    assert _running_order(make_app()) == (BEFORE, AFTER, TEARDOWN)


def test_without_the_pages_their_hook_is_left_out(make_app):
    assert _running_order(make_app(ui_enabled=False)) == (BEFORE, [h for h in AFTER if h is not record_explanation],
                                                          TEARDOWN)


def test_the_order_keeps_its_dependencies():
    before, after, teardown = request_hooks.hook_order((record_explanation,))
    assert before[0] is begin_call  # every other hook reads the call state
    assert teardown[-1] is flush_writes_on_teardown  # commit what all others queued
    for queuer in (write_audit_row, record_explanation):  # the commit comes after every hook that queues rows
        assert after.index(queuer) < after.index(flush_writes)
    for reader in (record_metrics, log_call):  # and before those that report the answer's status (500 if it failed)
        assert after.index(flush_writes) < after.index(reader)
    for reader in (record_metrics, log_call):  # they read the FHIR count and time off the timings
        assert after.index(record_fhir_timings) < after.index(reader)


def test_the_module_docstring_lists_the_hooks_in_running_order():
    """The table a reader sees is the order the code registers (the page hook is listed as `page hooks`)."""
    doc = request_hooks.__doc__
    sections = re.split(r"^(?:before each request|after each response.*|at teardown.*)$", doc, flags=re.M)[1:]
    listed = [re.findall(r"^\s+\d+\.\s+(\w+(?: hooks)?)", s, flags=re.M) for s in sections]
    before, after, teardown = request_hooks.hook_order()
    names = lambda hooks: [h.__name__ for h in hooks]  # noqa: E731
    assert listed[0] == names(before)
    assert [n for n in listed[1] if n != "page hooks"] == names(after)
    assert listed[1].index("page hooks") == listed[1].index("flush_writes") - 1
    assert listed[2] == names(teardown)


def test_each_request_gets_a_fresh_call_state_even_in_a_held_app_context(make_app):
    app = make_app()
    seen = []

    @app.get("/probe")
    def probe():
        state = call_state()
        seen.append((state, state.service_id))
        state.service_id = "set-by-the-first-request"
        return "ok"

    with app.app_context():  # Flask then reuses this context, and its `g`, for every request below
        client = app.test_client()
        assert client.get("/probe").status_code == 200 and client.get("/probe").status_code == 200
    (first, _), (second, service_id) = seen
    assert first is not second and service_id is None


def test_only_the_call_state_module_touches_flask_g():
    """Per-call values live in `CallState`; no module reads or writes loose `flask.g` attributes."""
    users = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "flask" and any(a.name == "g" for a in node.names):
                users.append(path.relative_to(PACKAGE).as_posix())
            elif isinstance(node, ast.Attribute) and node.attr == "g" and getattr(node.value, "id", None) == "flask":
                users.append(path.relative_to(PACKAGE).as_posix())
    assert users == ["http/call_state.py"]
