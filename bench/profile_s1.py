"""Where one S1 call spends its CPU: the whole WSGI call in-process (no server, no socket), in a loop.

    .venv/bin/python bench/profile_s1.py                 # CPU ms per call (process CPU, every thread)
    .venv/bin/python bench/profile_s1.py --profile 30    # and cProfile's top 30 functions (own time)
    py-spy record -o s1.svg -- .venv/bin/python bench/profile_s1.py --calls 3000

The app is built as `bench/servers.Service` builds it (settings from CDS_* defaults, auth off, SQLite in
a temporary directory, Prometheus in multiprocess mode, the JSON call log at INFO, here to /dev/null);
the request is S1's (`ascvd-10y-risk`, the 53 KB body, a fresh hookInstance per call). Process CPU
includes the writer thread's commits, which a server spends as well.
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import logging
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import s1_patient_view as s1  # noqa: E402


def build(tmp: str):
    from cds_service import create_app

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = f"{tmp}/prometheus"
    Path(f"{tmp}/prometheus").mkdir()
    env = {"CDS_AUTH_REQUIRED": "false", "CDS_DATABASE_URL": f"sqlite:///{tmp}/cds.sqlite3",
           "CDS_LOG_LEVEL": "INFO", "PROMETHEUS_MULTIPROC_DIR": f"{tmp}/prometheus"}
    app = create_app(env=env)
    for name in ("cds_service", "fhir_adapters", "models"):  # the call log is written, to nowhere
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(open(os.devnull, "w"))
    return app


def body_for(app, service_id: str = s1.S1_SERVICE) -> str:
    resources = s1.synthetic_patient()
    pid = next(r["id"] for r in resources if r["resourceType"] == "Patient")
    bound = app.extensions["cds"].services[service_id][0]
    context = {"userId": "Practitioner/example", "patientId": pid}
    prefetch = {k: s1.search(resources, s1.render(spec.query, context)) for k, spec in bound.definition.prefetch.items()}
    return json.dumps({"hook": "patient-view", "hookInstance": s1.HOOK_INSTANCE, "context": context, "prefetch": prefetch})


def caller(app, body: str, service_id: str = s1.S1_SERVICE):
    """A function making one call through the WSGI app as gunicorn would (environ, start_response)."""
    from werkzeug.test import EnvironBuilder

    base = EnvironBuilder(path=f"/cds-services/{service_id}", method="POST", content_type="application/json",
                          base_url="http://127.0.0.1:8080").get_environ()
    counter = iter(range(10**9))
    status = []

    def start_response(s, headers, exc_info=None):
        status.append(s)

    def call() -> str:
        raw = body.replace(s1.HOOK_INSTANCE, f"profile-{next(counter)}").encode()
        environ = dict(base, CONTENT_LENGTH=str(len(raw)), **{"wsgi.input": io.BytesIO(raw)})
        out = app.wsgi_app(environ, start_response)
        b"".join(out)
        getattr(out, "close", lambda: None)()
        return status.pop()
    return call


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--profile", type=int, metavar="N", help="print cProfile's top N functions by own time")
    ap.add_argument("--sort", default="tottime", help="cProfile sort key (tottime, cumulative)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cds-profile-") as tmp:
        app = build(tmp)
        call = caller(app, body_for(app))
        from cds_service.server import gunicorn_conf  # as a worker of the production server runs

        gunicorn_conf.pre_fork(None, None)
        gc.set_threshold(*gunicorn_conf.GC_THRESHOLD)
        for _ in range(100):  # warm-up: caches, the writer thread, first SQLite pages
            assert call().startswith("200"), "S1 call failed"
        profiler = cProfile.Profile() if args.profile else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        for _ in range(args.calls):
            call()
        if profiler:
            profiler.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(f"{args.calls} calls: CPU {cpu * 1000 / args.calls:.3f} ms/call, wall {wall * 1000 / args.calls:.3f} ms/call"
              f"{' (under cProfile)' if profiler else ''}; load average {os.getloadavg()[0]:.2f}")
        if profiler:
            pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.profile)
        app.extensions["cds"].engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
