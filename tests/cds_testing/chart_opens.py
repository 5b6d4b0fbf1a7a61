"""Hooks fired at an app as the EHR simulator fires them (`cds_service.ehr`: the context, draft orders and
prefetch of the bundled demo patients), through the app's test client. Used by the alert-control tests
and by bench/alert_load.py (cards per chart open).
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Sequence

from cds_service.ehr.contexts import build_context
from cds_service.ehr.drafts import DraftOrder
from cds_service.ehr.hook_calls import build_call
from cds_service.ehr.patients import DemoPatients
from cds_testing.apps import written_engine


def fire(client, app, hook: str, patients: DemoPatients, pid: str, now: datetime, *,
         drafts: Sequence[DraftOrder] = ()) -> dict[str, list[dict]]:
    """Every loaded service answering `hook`, for one patient (a fresh hookInstance each): {service id: cards}."""
    patient = patients.patient(pid)
    context = build_context(hook, patient, now=now, drafts=drafts)
    out = {}
    for bound in (b for b in app.extensions["cds"].all_services() if b.definition.hook == hook):
        call = build_call(bound, patient.resources, context)
        resp = client.post(f"/cds-services/{call.service_id}", json=call.body)
        assert resp.status_code == 200, f"{call.service_id} {hook} {pid}: {resp.status_code} {resp.get_data(as_text=True)[:300]}"
        out[call.service_id] = resp.get_json()["cards"]
        written_engine(app)  # the next chart open comes seconds later: this call's rows are committed by then
    return out


def open_every_chart(client, app, patients: DemoPatients, now: datetime, hook: str = "patient-view") -> dict[str, list[list[dict]]]:
    """`hook` for every demo patient: {service id: [cards of each patient's call]}."""
    calls: dict[str, list[list[dict]]] = {}
    for pid in patients.ids:
        for sid, cards in fire(client, app, hook, patients, pid, now).items():
            calls.setdefault(sid, []).append(cards)
    return calls


def per_call(calls: dict[str, list[list[dict]]]) -> dict[str, float]:
    """Cards per call, per service."""
    return {sid: sum(len(c) for c in cards) / len(cards) for sid, cards in calls.items()}


def indicators(calls: dict[str, list[list[dict]]]) -> dict[str, Counter]:
    return {sid: Counter(c["indicator"] for cs in cards for c in cs) for sid, cards in calls.items()}
