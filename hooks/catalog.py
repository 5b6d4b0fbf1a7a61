"""The CDS Hooks specification as data: the six hooks this service answers, with their context fields
(Hook Library STU1 1.0.1), the prefetch token syntax, and the value sets and limits of a card
(CDS Hooks 2.0, "Prefetch Template" and "CDS Service Response").

`required` fields are checked on every request (HOOK-* MUST lines); `tokens` are the fields a prefetch
template may name as `{{context.<field>}}` (TOKEN-2: top-level, primitive, "Prefetch Token: Yes").
These constants are the one home of those rules: the service-file loader, prefetch, the card types,
the builders and the conformance checker all read them from here.
"""
from __future__ import annotations

import re
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

# A prefetch token in a query template: `{{context.patientId}}`, `{{userPractitionerId}}` (TOKEN-1).
PREFETCH_TOKEN = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")

# TOKEN-1: the four user tokens, derived from context.userId ("PractitionerRole/123" -> 123).
USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}

# Cards (CDS Hooks 2.0 "Card Attributes", "Suggestion", "Action", "Link").
SUMMARY_MAX = 139  # CARD-2: "<140 characters"
INDICATORS = ("info", "warning", "critical")  # CARD-3, in ascending urgency (builders compare by index)
SELECTION_BEHAVIORS = ("at-most-one", "any")  # CARD-4
ACTION_TYPES = ("create", "update", "delete")  # ACT-1
LINK_TYPES = ("absolute", "smart")  # LINK-1
# Feedback ("Feedback", FEEDBACK-2): what became of a card (invariant cds-fb-1).
FEEDBACK_OUTCOMES = ("accepted", "overridden")
