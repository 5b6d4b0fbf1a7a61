"""The CDS Hooks service. `create_app()` is the WSGI entry point (`cds_service:create_app()`)."""
from __future__ import annotations

import logging
import time
from typing import Any, Mapping

from flask import Flask, g, request

from cds_service.storage.audit import init_audit
from cds_service.storage.call_writes import init_call_writes
from cds_service.config import Settings
from cds_service.http.cors import init_cors
from fhir_adapters.resources import warm_up

from cds_service.storage.db import make_engine
from cds_service.errors import register_error_handlers
from cds_service.fhir_access.fetchers import init_fhir_access
from cds_service.security.jwt_verifier import Verifier
from cds_service.logs import configure_logging
from cds_service.http.metrics import init_metrics
from cds_service.http.openapi import init_openapi
from cds_service.security.outbound import guard_fetcher_factory
from cds_service.runtime import Runtime, build_services

log = logging.getLogger("cds_service")


def create_app(overrides: Mapping[str, Any] | None = None, *, config_file: str | None = None,
               env: Mapping[str, str] | None = None) -> Flask:
    """Build an app: settings → services and models (checked) → database → routes.

    Raises `ConfigError` or `ServiceFileError` when the configuration or a service file is wrong;
    the service then refuses to start.
    """
    settings = Settings.load(config_file, env, overrides)
    configure_logging(settings.log_level)
    if not settings.auth_required:
        log.warning("!!! AUTHENTICATION IS DISABLED (auth_required = false). Development only: any caller is trusted. !!!",
                    extra={"event": "auth_disabled", "setting": "auth_required=false"})

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes  # 413 before the body is read
    engine = make_engine(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    runtime = Runtime(settings=settings, services=build_services(settings), engine=engine)
    init_call_writes(app, engine)  # first: its flush must run after every hook that queues a write
    warm_up()
    if settings.auth_required:  # issue #6: the trusted clients' JWTs are verified on every call (SEC-2..9)
        runtime.verifier = Verifier.from_settings(settings, runtime.engine)
    app.extensions["cds"] = runtime

    from cds_service.http.views import bp

    app.register_blueprint(bp)
    if settings.ui_enabled:  # issue #7: simulator, explanation and analytics pages (blueprint "ui")
        from cds_service.ui import init_ui

        init_ui(app)
    init_cors(app, settings.cors_origins)
    register_error_handlers(app)
    _init_call_log(app)
    # Issue #7: Prometheus /metrics and /openapi.json. Metrics first: Flask runs after_request hooks in
    # reverse order, so its hook runs after fhir_access has put the FHIR timings on g.timings.
    init_metrics(app, runtime, env)
    init_openapi(app)
    init_fhir_access(app, runtime)  # issue #3: fetch missing prefetch keys from the request's fhirServer
    init_audit(app)  # one audit row per call (issue #6)
    # Outbound trust (issue #6): a fhirServer not allow-listed for the caller gets no fetcher, hence no request.
    runtime.fetcher_factory = guard_fetcher_factory(settings, runtime.fetcher_factory)
    return app


def _init_call_log(app: Flask) -> None:
    """One JSON log line per call: hookInstance, service, status, latency (no PHI, no tokens)."""

    @app.before_request
    def _start():
        g.started = time.perf_counter()

    @app.after_request
    def _log(resp):
        latency = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        timings = g.get("timings")
        log.info("call", extra={
            "event": "call", "method": request.method, "path": request.path if not g.get("service_id") else None,
            "service": g.get("service_id"), "hook": g.get("hook"), "hookInstance": g.get("hook_instance"),
            "status": resp.status_code, "latency_ms": round(latency, 2),
            "timings": {k: round(v * 1000, 2) for k, v in {**vars(timings), **timings.extra}.items() if isinstance(v, float)} if timings else None,
            "fhir_calls": timings.extra.get("fhir_calls") if timings else None,  # issue #3: outbound FHIR GETs
        })
        return resp
