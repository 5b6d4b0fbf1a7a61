"""Model inference per prediction, for every patient-view service's model, on the S1 patient.

The features come from the real pipeline (prefetch → extractors) so each model scores exactly what
it scores in production; then `model.predict` alone is timed, one prediction at a time. The whole
in-process invocation (no HTTP) is timed too: it is the work S1 adds over its floor.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import datetime, timezone

from . import s1_patient_view as s1


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def run(*, quick: bool = False) -> dict:
    from cds_service import create_app
    from cds_service.hook_request import parse_hook_request
    from cds_service.pipeline import invoke
    from hooks.catalog import HOOKS

    tmp = tempfile.mkdtemp(prefix="cds-bench-inf-")
    settings = {"auth_required": False, "database_url": f"sqlite:///{tmp}/cds.sqlite3", "log_level": "WARNING"}
    if os.environ.get("BENCH_HOOKS_DIR"):
        settings["hooks_dir"] = os.environ["BENCH_HOOKS_DIR"]
    app = create_app(settings, env={})
    runtime = app.extensions["cds"]
    resources = s1.synthetic_patient()
    pid = next(r["id"] for r in resources if r["resourceType"] == "Patient")
    context = {"userId": "Practitioner/example", "patientId": pid}
    n_predict, n_invoke = (300, 100) if quick else (3000, 500)
    out = {}
    for bound in runtime.all_services():
        if bound.definition.hook != "patient-view":
            continue
        prefetch = {k: s1.search(resources, s1.render(spec.query, context)) for k, spec in bound.definition.prefetch.items()}
        body = {"hook": "patient-view", "hookInstance": "bench", "context": context, "prefetch": prefetch}
        request = parse_hook_request(body, HOOKS["patient-view"])
        now = datetime.now(timezone.utc)
        invoke_ms = []
        for _ in range(n_invoke):
            t = time.perf_counter()
            _, ctx = invoke(bound, request, now=now)
            invoke_ms.append((time.perf_counter() - t) * 1000)
        entry = {"invoke_p50_ms": round(statistics.median(invoke_ms), 3), "invoke_p99_ms": round(_percentile(invoke_ms, 99), 3)}
        if bound.model is None or ctx.prediction is None:
            entry["model"] = bound.model.info.id if bound.model else None
            entry["note"] = "no prediction for this patient (missing input or outside the population)"
        else:
            model, features = bound.model, ctx.features
            for _ in range(20):
                model.predict(features)
            us, cpu_us = [], []
            for _ in range(n_predict):
                c, t = time.thread_time(), time.perf_counter()
                model.predict(features)
                us.append((time.perf_counter() - t) * 1e6)
                cpu_us.append((time.thread_time() - c) * 1e6)
            # Wall-clock p99 on a shared machine includes time the thread was not running; the CPU-time
            # p99 is what the model itself costs.
            entry.update(model=f"{model.info.id} {model.info.version}", predictions=n_predict,
                         p50_us=round(statistics.median(us), 1), p99_us=round(_percentile(us, 99), 1),
                         cpu_p99_us=round(_percentile(cpu_us, 99), 1),
                         share_of_invoke=round(statistics.median(us) / 1000 / entry["invoke_p50_ms"], 3))
        out[bound.definition.id] = entry
    runtime.engine.dispose()
    return out
