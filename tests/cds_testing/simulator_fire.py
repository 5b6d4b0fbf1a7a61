"""Every hook of every bundled service fired for each of the EHR simulator's patients exactly as the simulator builds
the request (`cds_service.ehr`: the hook's context, every draft preset of the order hooks — alone, and all signed
together —, and the prefetch answered from the patient's own record). Shared by the clinician's passes over every card
(tests/clinical/test_simulator_patients.py, tests/test_clinician_text.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from cds_service.ehr.contexts import build_context
from cds_service.ehr.drafts import DRAFT_ORDERS
from cds_service.ehr.hook_calls import build_call
from cds_service.ehr.patients import DemoPatients

ORDER_HOOKS = ("order-select", "order-sign")
PATIENTS = DemoPatients()


@dataclass
class Fired:
    patient: str
    service: str
    hook: str
    drafts: str  # "" for hooks without orders, a preset's key, or "all"
    status: int
    cards: list = field(default_factory=list)
    unavailable: tuple[str, ...] = ()  # prefetch keys left out (mode "required")

    @property
    def where(self) -> str:
        return f"{self.patient} {self.service}[{self.hook}]{' ' + self.drafts if self.drafts else ''}"


def draft_sets(hook: str, every: bool):
    if hook not in ORDER_HOOKS:
        return [("", [])]
    sets = [(d.key, [d]) for d in DRAFT_ORDERS] if every else []
    return sets + ([("all", list(DRAFT_ORDERS))] if hook == "order-sign" else [])


def fire_all(client, bound, mode: str) -> list[Fired]:
    """`mode`: "full" (the simulator's prefetch), "required" (only the keys a service declares `fail`; the others
    are then unavailable: no prefetch, no FHIR access), "none" (no prefetch at all)."""
    now = datetime.now(timezone.utc)
    out = []
    for pid in PATIENTS.ids:
        patient = PATIENTS.patient(pid)
        for b in bound:
            service = b.definition
            for key, drafts in draft_sets(service.hook, every=mode == "full"):
                if not drafts and service.hook in ORDER_HOOKS:
                    continue
                context = build_context(service.hook, patient, now=now, drafts=drafts,
                                        selected=[d.id for d in drafts])
                body = build_call(b, patient.resources, context).body
                left_out: tuple[str, ...] = ()
                if mode == "none":
                    body.pop("prefetch", None)
                elif mode == "required":
                    left_out = tuple(k for k, p in service.prefetch.items() if p.on_error == "omit")
                    body["prefetch"] = {k: v for k, v in body.get("prefetch", {}).items() if k not in left_out}
                resp = client.post(f"/cds-services/{service.id}", json=body)
                cards = resp.get_json().get("cards", []) if resp.status_code == 200 else []
                out.append(Fired(pid, service.id, service.hook, key, resp.status_code, cards, left_out))
                if resp.status_code != 200:
                    out[-1].cards = [resp.get_json()]  # the OperationOutcome, for the checks that read it
    return out
