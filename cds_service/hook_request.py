"""Parse a CDS Hooks service request into a frozen `HookRequest` (REQ-1..4, HOOK-*, AUTHZ-1).

Raw dicts stop here: everything after this module works on typed values. Unknown members and
`extension` are ignored (GEN-5, EXT-3), except our own `org.cdsml.no-card-reason` (see `cds_service.no_card`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from cds_service.errors import InvalidRequest
from hooks.catalog import HOOKS, HookSpec

# HOOKDEF-4 (logical-model invariant ord-1): a relative reference "Type/id".
_RELATIVE_REF = re.compile(r"^[A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")
# FHIR `id` datatype.
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
# hookInstance: a UUID in the spec ("A universally unique identifier (UUID) for this particular hook
# call"); any token of up to 100 characters from this set is accepted (some EHRs send other ids). It
# keys stored rows and travels in links, so anything else (a NUL, a surrogate, 101 characters) is a 400.
HOOK_INSTANCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
# A request extension asking why a call gave no card (EXT-1: a reverse-domain member of `extension`).
NO_CARD_REASON = "org.cdsml.no-card-reason"


@dataclass(frozen=True, slots=True)
class FhirAuthorization:
    """AUTHZ-1. The token is never shown in a repr, a log line or an error (AUTHZ-2)."""

    access_token: str = field(repr=False)
    token_type: str
    expires_in: int | None
    scope: str
    subject: str | None
    patient: str | None


@dataclass(frozen=True, slots=True)
class HookRequest:
    hook: str
    hook_instance: str
    context: Mapping[str, Any]
    # key -> resource, or None for "known empty" (PREFETCH-3/6); an absent key means "not supplied".
    prefetch: Mapping[str, dict | None]
    fhir_server: str | None = None
    fhir_auth: FhirAuthorization | None = None
    # The caller asked, through the request's `extension`, to be told why no card resulted.
    wants_no_card_reason: bool = False

    @property
    def patient_id(self) -> str:
        return self.context["patientId"]

    @property
    def encounter_id(self) -> str | None:
        return self.context.get("encounterId")


def parse_hook_request(body: Any, hook: HookSpec | None = None) -> HookRequest:
    """Validate `body` (already JSON-decoded) and return a `HookRequest`.

    `hook` is the hook the called service answers; when given, the body's `hook` must equal it.
    Raises `InvalidRequest` naming the offending field.
    """
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", expression="$")
    hook_name = _required_str(body, "hook")
    hook_instance = _required_str(body, "hookInstance")
    if not HOOK_INSTANCE.match(hook_instance):
        raise InvalidRequest("'hookInstance' must be a UUID (at most 100 letters, digits, '.', '_', ':' or '-').",
                             expression="hookInstance")
    if hook is not None and hook_name != hook.name:
        raise InvalidRequest(
            f"This service answers the '{hook.name}' hook, not '{hook_name}'.", expression="hook"
        )
    spec = hook or HOOKS.get(hook_name)
    context = body.get("context")
    if not isinstance(context, dict):
        raise InvalidRequest("'context' is required and must be an object.", expression="context")
    if spec is not None:
        _check_context(spec, context)

    fhir_server = body.get("fhirServer")
    if fhir_server is not None and (not isinstance(fhir_server, str) or not re.match(r"^https?://", fhir_server)):
        raise InvalidRequest("'fhirServer' must be an absolute http(s) URL.", expression="fhirServer")
    auth = _parse_authorization(body.get("fhirAuthorization"))
    if auth is not None and not fhir_server:
        # Invariant cds-r-1: fhirServer is REQUIRED whenever fhirAuthorization is present.
        raise InvalidRequest("'fhirAuthorization' was sent without 'fhirServer'.", expression="fhirServer")

    prefetch = body.get("prefetch", {})
    if prefetch is None:
        prefetch = {}
    if not isinstance(prefetch, dict):
        raise InvalidRequest("'prefetch' must be an object.", expression="prefetch")
    for key, value in prefetch.items():
        if value is not None and not (isinstance(value, dict) and isinstance(value.get("resourceType"), str)):
            raise InvalidRequest(
                f"Prefetch value '{key}' must be a FHIR resource or null.", expression=f"prefetch.{key}"
            )
    return HookRequest(
        hook=hook_name,
        hook_instance=hook_instance,
        context=MappingProxyType(dict(context)),
        prefetch=MappingProxyType(dict(prefetch)),
        fhir_server=fhir_server.rstrip("/") if fhir_server else None,
        fhir_auth=auth,
        wants_no_card_reason=isinstance(body.get("extension"), dict) and body["extension"].get(NO_CARD_REASON) is True,
    )


def _required_str(obj: dict, name: str, where: str = "") -> str:
    value = obj.get(name)
    path = f"{where}{name}"
    if value is None:
        raise InvalidRequest(f"'{path}' is required.", expression=path)
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"'{path}' must be a non-empty string.", expression=path)
    return value


def _check_context(spec: HookSpec, context: dict) -> None:
    for name in spec.required:
        if name not in context or context[name] is None:
            raise InvalidRequest(
                f"The '{spec.name}' hook requires 'context.{name}'.", expression=f"context.{name}"
            )
    user_id = _required_str(context, "userId", "context.")
    if not _RELATIVE_REF.match(user_id) or user_id.split("/")[0] not in spec.user_types:
        raise InvalidRequest(
            f"'context.userId' must be a reference to one of {', '.join(spec.user_types)} (e.g. 'Practitioner/123').",
            expression="context.userId",
        )
    for name in ("patientId", "encounterId"):
        if name in context:
            value = _required_str(context, name, "context.")
            if not _FHIR_ID.match(value):
                raise InvalidRequest(f"'context.{name}' must be a FHIR id.", expression=f"context.{name}")
    for name in spec.bundles:
        value = context[name]
        # HOOK-AB-4: the 1.0.1 examples send a bare array of Appointments; accepted as well.
        is_bundle = isinstance(value, dict) and value.get("resourceType") == "Bundle"
        if not is_bundle and not (name == "appointments" and isinstance(value, list)):
            raise InvalidRequest(f"'context.{name}' must be a FHIR Bundle.", expression=f"context.{name}")
    if "selections" in spec.required:
        selections = context["selections"]
        if not isinstance(selections, list) or not selections or not all(
            isinstance(s, str) and _RELATIVE_REF.match(s) for s in selections
        ):
            raise InvalidRequest(
                "'context.selections' must be a non-empty array of references like 'MedicationRequest/123'.",
                expression="context.selections",
            )


def _parse_authorization(value: Any) -> FhirAuthorization | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest("'fhirAuthorization' must be an object.", expression="fhirAuthorization")
    token = _required_str(value, "access_token", "fhirAuthorization.")
    token_type = value.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise InvalidRequest(
            "'fhirAuthorization.token_type' must be 'Bearer'.", expression="fhirAuthorization.token_type"
        )
    expires_in = value.get("expires_in")
    if expires_in is not None and (not isinstance(expires_in, int) or isinstance(expires_in, bool)):
        raise InvalidRequest(
            "'fhirAuthorization.expires_in' must be an integer.", expression="fhirAuthorization.expires_in"
        )
    scope = value.get("scope", "")
    return FhirAuthorization(
        access_token=token,
        token_type="Bearer",
        expires_in=expires_in,
        scope=scope if isinstance(scope, str) else "",
        subject=value.get("subject") if isinstance(value.get("subject"), str) else None,
        patient=value.get("patient") if isinstance(value.get("patient"), str) else None,
    )
