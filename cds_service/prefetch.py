"""Resolve a service's prefetch keys: what the EHR sent, else what a fetcher can get (PREFETCH-1..7).

The spec's meanings (habit 9): an absent key means "fetch it yourself or 412"; a `null` value means
"known to have no data" (PREFETCH-6); an OperationOutcome (or a Bundle holding one) reports an error
and follows the key's `on_error` policy without a pointless re-query (PREFETCH-3).
"""
from __future__ import annotations

import re
from typing import Mapping, Protocol

from cds_service.errors import InvalidRequest, PrefetchUnavailable
from cds_service.hook_request import HookRequest
from fhir_adapters.errors import FhirError
from fhir_adapters.resources import (
    ERROR,
    NO_ACCESS,
    TIMEOUT,
    KeyData,
    Unavailable,
    next_link,
    outcome_text,
    split_value,
    validate_resource,
)
from hooks.catalog import PREFETCH_TOKEN, USER_TOKENS
from hooks.definitions import ServiceDefinition


class FetchResult(Protocol):
    resources: tuple[dict, ...]
    error: str | None  # None on success; a PHI-free reason otherwise
    timed_out: bool  # the error is a timeout


class Fetcher(Protocol):
    """The seam to the EHR's FHIR server: run rendered queries within the deadline."""

    def fetch_all(self, queries: Mapping[str, str]) -> Mapping[str, "FetchResult"]: ...

    def complete_pages(self, bundle: Mapping) -> tuple[list[dict], str | None]: ...


def render_template(query: str, request: HookRequest) -> str:
    """Fill `{{context.x}}` and the user tokens (TOKEN-1..3). A token with no value → 400."""

    def value(match: re.Match) -> str:
        token = match.group(1)
        if token in USER_TOKENS:
            rtype, _, rid = str(request.context.get("userId", "")).partition("/")
            if rtype != USER_TOKENS[token]:
                raise InvalidRequest(f"prefetch token '{token}' needs context.userId to be a {USER_TOKENS[token]}", expression="context.userId")
            return rid
        name = token.removeprefix("context.")
        v = request.context.get(name)
        if v is None or isinstance(v, (dict, list)):
            raise InvalidRequest(f"prefetch token '{{{{{token}}}}}' has no value in this request's context", expression=f"context.{name}")
        return str(v)

    return PREFETCH_TOKEN.sub(value, query)


def resolve_prefetch(service: ServiceDefinition, request: HookRequest, fetcher: Fetcher | None) -> dict[str, KeyData]:
    """Return KeyData for every declared key, fetching what is missing. Raises `PrefetchUnavailable`."""
    out: dict[str, KeyData] = {}
    to_fetch: dict[str, str] = {}
    for key, spec in service.prefetch.items():
        if key not in request.prefetch:
            to_fetch[key] = render_template(spec.query, request)
            continue
        value = request.prefetch[key]
        if value is None:  # PREFETCH-6: the EHR ran the query and found nothing
            out[key] = KeyData(())
            continue
        resources, outcomes = split_value(value)
        if outcomes:
            timed_out = any(isinstance(i, dict) and i.get("code") == "timeout" for i in outcomes[0].get("issue") or ())
            out[key] = _apply_policy(service, key, outcome_text(outcomes[0]), TIMEOUT if timed_out else ERROR)
            continue
        error, cause = None, ERROR
        if value.get("resourceType") == "Bundle" and next_link(value):
            # PREFETCH-7: a paged prefetch Bundle is completed by following its next link; without
            # FHIR access the first page alone is not the data the template asked for.
            if fetcher is None:
                error, cause = "the prefetched Bundle has more pages, and no FHIR server access was given to read them", NO_ACCESS
            else:
                more, error = fetcher.complete_pages(value)
                resources += more
        out[key] = _apply_policy(service, key, error, cause) if error else _checked(service, key, resources)

    if to_fetch:
        if fetcher is None:
            for key in to_fetch:
                out[key] = _apply_policy(service, key, "not prefetched, and no FHIR server access was given", NO_ACCESS)
        else:
            for key, result in fetcher.fetch_all(to_fetch).items():
                if result.error:
                    out[key] = _apply_policy(service, key, result.error, TIMEOUT if result.timed_out else ERROR)
                else:
                    out[key] = _checked(service, key, list(result.resources), fetched=True)
    return {key: out[key] for key in service.prefetch}


def _checked(service: ServiceDefinition, key: str, resources: list[dict], fetched: bool = False) -> KeyData:
    """Validate the resources of a single-resource read (e.g. `Patient/{{context.patientId}}`)."""
    query = service.prefetch[key].query
    if "?" not in query:
        expected = query.split("/")[0]
        try:
            for r in resources:
                validate_resource(r, expected)
        except FhirError as exc:
            return _apply_policy(service, key, str(exc))
    return KeyData(tuple(resources), fetched=fetched)


def _apply_policy(service: ServiceDefinition, key: str, reason: str, cause: str = ERROR) -> KeyData:
    if service.prefetch[key].on_error == "fail":
        # PREFETCH-5 / ERR-1: required data is unobtainable.
        raise PrefetchUnavailable(f"Required prefetch '{key}' is unavailable: {reason}.", expression=f"prefetch.{key}")
    return KeyData((), unavailable=Unavailable(reason, cause))
