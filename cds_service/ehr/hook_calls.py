"""The CDS Hooks request an EHR sends: a fresh hookInstance, the context, and the prefetch.

The prefetch is filled the way an EHR does it: each of the called service's templates is rendered
with the request's context (TOKEN-1..3, the service's own `render_template`) and answered from the
patient's resources (`fhir_query`). A template that cannot be answered exactly (a 3.0 FHIRPath
token, an unsupported search parameter) is left out, never approximated: the service sees an absent
key (PREFETCH-1, PREFETCH-3), as it would from an EHR that does not prefetch it.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from cds_service.ehr.fhir_query import UnsupportedQuery, evaluate
from cds_service.errors import InvalidRequest
from cds_service.hook_request import HookRequest
from cds_service.prefetch import render_template


def local_prefetch(templates: Mapping[str, str], context: Mapping[str, Any],
                   resources: Iterable[dict]) -> tuple[dict[str, Any], dict[str, str]]:
    """Each template rendered with `context` and answered from `resources` (PREFETCH-2).
    Returns (prefetch, {key: why it was left out})."""
    resources = list(resources)
    probe = HookRequest("", "", MappingProxyType(dict(context)), MappingProxyType({}))
    prefetch: dict[str, Any] = {}
    left_out: dict[str, str] = {}
    for key, template in templates.items():
        try:
            prefetch[key] = evaluate(render_template(str(template), probe), resources)
        except InvalidRequest as exc:  # a token the context has no value for
            left_out[key] = exc.message
        except UnsupportedQuery as exc:
            left_out[key] = str(exc)
    return prefetch, left_out


def hook_request(hook: str, context: Mapping[str, Any], *, prefetch: Mapping[str, Any] | None = None,
                 fhir_server: str | None = None, fhir_token: str | None = None, patient_id: str | None = None) -> dict:
    """The request body (REQ-1): `fhirServer` and `fhirAuthorization` (AUTHZ-1) only with a server."""
    body: dict[str, Any] = {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": dict(context)}
    if fhir_server:
        body["fhirServer"] = fhir_server
        if fhir_token:
            body["fhirAuthorization"] = {"access_token": fhir_token, "token_type": "Bearer", "expires_in": 300,
                                         "scope": "patient/*.read", "subject": "cds-service-cli"}
            if patient_id:
                body["fhirAuthorization"]["patient"] = patient_id
    if prefetch:
        body["prefetch"] = dict(prefetch)
    return body


@dataclass
class HookCall:
    """One request the simulator's page sends, with the notes it shows next to it."""

    service_id: str
    title: str
    hook: str
    body: dict
    notes: list[str] = field(default_factory=list)


def build_call(bound, resources: Iterable[dict], context: Mapping[str, Any]) -> HookCall:
    """The request for one loaded service (a runtime's bound service): its whole prefetch from `resources`."""
    service = bound.definition
    templates = {key: spec.query for key, spec in service.prefetch.items()}
    prefetch, left_out = local_prefetch(templates, context, resources)
    notes = [f"prefetch '{key}' not sent: {why}" for key, why in left_out.items()]
    return HookCall(service.id, service.title, service.hook, hook_request(service.hook, context, prefetch=prefetch), notes)
