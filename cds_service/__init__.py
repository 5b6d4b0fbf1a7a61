"""The CDS Hooks service. `create_app()` is the WSGI entry point (`cds_service:create_app()`)."""
from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

from flask import Flask, Response

from cds_service.config import Settings
from cds_service.errors import ConfigError
from cds_service.fhir_access.fetchers import init_fhir_access
from cds_service.http.errors import register_error_handlers
from cds_service.http.metrics import init_metrics
from cds_service.http.openapi import init_openapi
from cds_service.http.request_hooks import register_request_hooks
from cds_service.http.views import bp
from cds_service.logs import configure_logging
from cds_service.runtime import Runtime, build_services
from cds_service.security.capability import LinkSigner
from cds_service.security.jwt_verifier import Verifier
from cds_service.security.outbound import guard_fetcher_factory
from cds_service.storage.audit import init_audit
from cds_service.storage.call_writes import init_call_writes
from cds_service.storage.card_history import CardHistory, check_retention
from cds_service.storage.db import make_engine
from cds_service.ui import init_ui, record_explanation
from fhir_adapters.resources import warm_up

log = logging.getLogger("cds_service")


def create_app(overrides: Mapping[str, Any] | None = None, *, config_file: str | None = None,
               env: Mapping[str, str] | None = None) -> Flask:
    """Build an app: settings → services and models (checked) → database → routes → request hooks.

    Raises `ConfigError` or `ServiceFileError` when the configuration or a service file is wrong;
    the service then refuses to start.
    """
    settings = Settings.load(config_file, env, overrides)
    configure_logging(settings.log_level)
    if settings.auth_required and not settings.public_base_url:
        # The JWT `aud` must be our URL as the EHR calls it; taken from the Host header, a token minted
        # for another vendor's URL would pass with `Host: other-vendor.example` (SEC-5).
        raise ConfigError("public_base_url is required when authentication is on: set it to the URL EHRs call this "
                          "service at (e.g. public_base_url = \"https://cds.example.org\"); the JWT audience and "
                          "card links are built from it, never from the request's Host header")
    if not settings.auth_required:
        log.warning("!!! AUTHENTICATION IS DISABLED (auth_required = false). Development only: any caller is trusted. !!!",
                    extra={"event": "auth_disabled", "setting": "auth_required=false"})

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes  # 413 before the body is read
    engine = make_engine(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    runtime = Runtime(settings=settings, services=build_services(settings), engine=engine)
    warm_up()
    if settings.auth_required:  # the trusted clients' JWTs are verified on every call (SEC-2..9)
        runtime.verifier = Verifier.from_settings(settings, runtime.engine)
    app.extensions["cds"] = runtime

    # Per-app objects the request hooks use.
    init_audit(app)
    check_retention(runtime.all_services(), settings.alert_history_days)
    runtime.card_history = CardHistory(engine, app.extensions["cds_audit"], keep_s=settings.alert_history_days * 86400)
    for shadow in (b.definition for b in runtime.all_services() if b.definition.alerts.mode == "shadow"):
        log.warning("service %s (%s) runs in SHADOW MODE: it records its cards and returns none to the EHR",
                    shadow.id, shadow.hook, extra={"event": "shadow_mode", "service": shadow.id, "hook": shadow.hook})
    init_metrics(app, runtime, env)  # also serves /metrics
    init_call_writes(app, engine)  # after the metrics: it reports its queue and lost rows there
    init_fhir_access(runtime)
    # Outbound trust: a fhirServer not allow-listed for the caller gets no fetcher, hence no request.
    runtime.fetcher_factory = guard_fetcher_factory(settings, runtime.fetcher_factory)

    app.register_blueprint(bp)
    page_hooks: tuple[Callable[[Response], Response], ...] = ()
    if settings.ui_enabled:  # simulator, explanation and analytics pages (blueprint "ui")
        runtime.link_signer = LinkSigner.from_settings(settings)  # ConfigError without ui_link_secret
        init_ui(app)
        page_hooks = (record_explanation,)
    init_openapi(app)
    register_error_handlers(app)
    register_request_hooks(app, page_hooks=page_hooks)
    return app
