"""Everything one app instance needs, built once in `create_app` and kept in `app.extensions`."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from flask import current_app, request
from sqlalchemy.engine import Engine

from cds_service.builders import BUILDERS
from cds_service.config import Settings
from cds_service.pipeline import BoundService
from hooks import load_services
from models.registry import make_loader

log = logging.getLogger("cds_service")


@dataclass
class Runtime:
    settings: Settings
    services: dict[str, list[BoundService]]  # id -> one per hook (DISC-5)
    engine: Engine
    verifier: Any | None = None
    # (request, identity) -> Fetcher | None: the seam to the EHR's FHIR server.
    fetcher_factory: Callable[..., Any] = field(default=lambda request, identity, deadline=None: None)
    metrics: Any | None = None
    link_signer: Any | None = None  # security.capability.LinkSigner when the explanation pages are on
    card_history: Any | None = None  # storage.card_history.CardHistory: the alert controls' memory

    def all_services(self) -> list[BoundService]:
        return [b for group in self.services.values() for b in group]


def build_services(settings: Settings) -> dict[str, list[BoundService]]:
    """Load and check every service file; raises ServiceFileError (start-up stops)."""
    loader = make_loader(settings.model_dir)
    loaded = load_services(settings.hooks_dir, load_model=loader, builders={k: b.check for k, b in BUILDERS.items()},
                           card_kinds={k: b.kinds for k, b in BUILDERS.items()})
    services: dict[str, list[BoundService]] = {}
    for definition, model, secondary in loaded:
        services.setdefault(definition.id, []).append(BoundService(definition, model, BUILDERS[definition.builder], secondary))
    return services


def get_runtime() -> Runtime:
    return current_app.extensions["cds"]


def base_url() -> str:
    """This service's public base URL, as the EHR calls it: `public_base_url` when set (behind a proxy the
    request's host is not the EHR's URL), else the request's. The JWT `aud` check and card links use it (SEC-5)."""
    return (get_runtime().settings.public_base_url or request.host_url).rstrip("/")
