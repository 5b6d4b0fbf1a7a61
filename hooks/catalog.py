"""The six CDS Hooks this service answers, with their context fields (Hook Library STU1 1.0.1).

`required` fields are checked on every request (HOOK-* MUST lines); `tokens` are the fields a prefetch
template may name as `{{context.<field>}}` (TOKEN-2: top-level, primitive, "Prefetch Token: Yes").
"""
from __future__ import annotations

from dataclasses import dataclass

ANY_USER = ("Practitioner", "PractitionerRole", "Patient", "RelatedPerson")
CLINICIAN = ("Practitioner", "PractitionerRole")


@dataclass(frozen=True, slots=True)
class HookSpec:
    name: str
    required: tuple[str, ...]
    tokens: tuple[str, ...]
    user_types: tuple[str, ...]
    bundles: tuple[str, ...] = ()  # context fields holding a FHIR Bundle (HOOKDEF-3)


HOOKS: dict[str, HookSpec] = {
    h.name: h
    for h in (
        HookSpec("patient-view", ("userId", "patientId"), ("userId", "patientId", "encounterId"), ANY_USER),
        HookSpec(
            "order-select",
            ("userId", "patientId", "selections", "draftOrders"),
            ("userId", "patientId", "encounterId"),
            CLINICIAN,
            ("draftOrders",),
        ),
        HookSpec(
            "order-sign",
            ("userId", "patientId", "draftOrders"),
            ("userId", "patientId", "encounterId"),
            CLINICIAN,
            ("draftOrders",),
        ),
        HookSpec("encounter-start", ("userId", "patientId", "encounterId"), ("userId", "patientId", "encounterId"), CLINICIAN),
        HookSpec("encounter-discharge", ("userId", "patientId", "encounterId"), ("userId", "patientId", "encounterId"), CLINICIAN),
        HookSpec(
            "appointment-book",
            ("userId", "patientId", "appointments"),
            ("userId", "patientId", "encounterId"),
            ANY_USER,
            ("appointments",),
        ),
    )
}

# TOKEN-1: the four user tokens, derived from context.userId ("PractitionerRole/123" -> 123).
USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}
