"""Pages for people: the EHR simulator, the explanation page of a card, feedback analytics, the
population worklist.

`init_ui(app)` registers the "ui" blueprint. Its `ui.explain` view is what makes the service call
view put an explanation link on ML/equation cards; the after-request hook `record_explanation`
records what that page shows (`storage/explanations.py`). The simulator is served only when `ui_simulator` is on (demo configuration),
the population worklist only when `ui_population` names a scored file, and then to the operator only.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import requests
from flask import Flask

from cds_service.config import ConfigError
from cds_service.ehr.patients import DemoPatients
from cds_service.ehr.signing import DemoKey
from cds_service.runtime import Runtime
from cds_service.security.replay import SqlReplayStore
from cds_service.security.smart_launch import Discovery
from cds_service.ui import analytics_views, demo_smart, explain_views, population_views, simulator_views, smart_views  # noqa: F401  (routes)
from cds_service.ui.blueprint import bp, record_explanation

__all__ = ["UiState", "init_ui", "record_explanation"]

log = logging.getLogger("cds_service.ui")


@dataclass
class UiState:
    """Per-app state of the pages, kept in `app.extensions["cds_ui"]`."""

    patients: Any | None = None  # DemoPatients, loaded when the simulator is on
    demo_key: Any | None = None  # DemoKey: signs the simulator's calls and seals its demo SMART tokens
    last_purge: float = 0.0  # when this process last deleted expired explanation records
    http: Any | None = None  # requests.Session for the SMART launch's discovery and token requests
    discovery: Any | None = None  # smart_launch.Discovery: the EHRs' SMART configurations, cached; launch limits
    used_codes: Any | None = None  # used codes of the simulator's demo SMART authorization server (a ReplayStore)
    worklist: Any | None = None  # the scored population file last read, with its modification time (population_views)


def init_ui(app: Flask) -> None:
    """Register the pages. Their app-wide after-request hook, `record_explanation`, is registered
    with the others by the factory (`cds_service/http/request_hooks.py`)."""
    runtime: Runtime = app.extensions["cds"]
    http = requests.Session()
    state = UiState(http=http, discovery=Discovery(runtime.settings, http))
    if runtime.settings.ui_simulator:
        state.patients = DemoPatients()
        state.demo_key = DemoKey()
        state.used_codes = SqlReplayStore(runtime.engine)  # codes of the demo SMART server are used once
    if runtime.settings.ui_population:
        try:
            import pyarrow.parquet  # noqa: F401  (lazy: an optional extra, needed only when the worklist is on)
        except ImportError:
            raise ConfigError("ui_population needs pyarrow: pip install -e '.[population]'") from None
        log.warning("the population worklist is on (ui_population): /population lists patients and their risks "
                    "to the operator login (analytics_token)", extra={"event": "population_worklist_on", "setting": "ui_population"})
    app.extensions["cds_ui"] = state
    app.register_blueprint(bp)
