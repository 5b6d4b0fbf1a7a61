"""The OpenAPI 3.1 document at `/openapi.json`, built from the app itself so it cannot drift.

Paths come from `app.url_map`: the CDS Hooks endpoints get full request/response schemas (one
service path per loaded service id, with that service's hook context and prefetch keys), the
operational endpoints theirs, and any other page (the UI's) a summary from its view's docstring.
`tests/test_openapi.py` compares the documented paths with the url map.

The schemas restate the CDS Hooks 2.0 rules that a schema can carry (checklist IDs in the
descriptions); the spec itself publishes no JSON Schema.
"""
from __future__ import annotations

import inspect
import re
from importlib.metadata import version
from typing import Any

from flask import Flask, Response, current_app, json

from hooks.catalog import (
    ACTION_TYPES,
    FEEDBACK_OUTCOMES,
    HOOKS,
    INDICATORS,
    LINK_TYPES,
    SELECTION_BEHAVIORS,
    SUMMARY_MAX,
)

OPENAPI_VERSION = "3.1.0"
_OO = {"$ref": "#/components/schemas/OperationOutcome"}
_FHIR_JSON = {"application/fhir+json": {"schema": _OO}}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict:
    return {"description": description, "content": _FHIR_JSON}


_UNAUTHORIZED = {"description": "Missing or invalid JWT (SEC-10: a bare 401 with `WWW-Authenticate: Bearer`, no body)."}


def build_openapi(app: Flask) -> dict:
    """The document for this app instance: its loaded services, its routes, its auth setting."""
    runtime = app.extensions["cds"]
    settings = runtime.settings
    secured: list[dict[str, list[str]]] = [{"ehrJwt": []}] if settings.auth_required else []
    paths: dict[str, dict] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        methods = sorted(m.lower() for m in (rule.methods or ()) if m not in ("HEAD", "OPTIONS"))
        for path, operations in _describe(app, rule, methods, runtime, secured):
            paths.setdefault(path, {}).update(operations)
    doc: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "CDS Hooks service for ML models and clinical equations", "version": _version(),
                 "description": "A CDS Hooks 2.0 service (https://cds-hooks.hl7.org/2.0/). Each loaded service has its own "
                                "path under /cds-services with the context of its hook and its prefetch keys.",
                 "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}},
        "paths": paths,
        "components": {"schemas": _schemas(runtime)},
    }
    if settings.public_base_url:
        doc["servers"] = [{"url": settings.public_base_url.rstrip("/")}]
    if settings.auth_required:
        doc["components"]["securitySchemes"] = {"ehrJwt": {
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "The EHR's JWT (SEC-3/4): signed with its private key (ES384/RS384 …, never HS* or none), "
                           "aud = the endpoint URL, a fresh jti per call, from a trusted iss."}}
    return doc


def _describe(app: Flask, rule, methods: list[str], runtime, secured: list) -> list[tuple[str, dict]]:
    """(OpenAPI path, {method: operation}) pairs for one url rule."""
    e = rule.endpoint
    if e == "cds.discovery":
        return [("/cds-services", {"get": {
            "operationId": "discovery", "tags": ["CDS Hooks"], "summary": "Discovery: the services this server offers (DISC-1..6)",
            "security": secured,
            "responses": {"200": {"description": "The service descriptors.",
                                  "content": {"application/json": {"schema": _ref("DiscoveryResponse")}}},
                          "401": _UNAUTHORIZED}}})]
    if e == "cds.call_service":
        out = []
        for sid, group in sorted(runtime.services.items()):
            hooks = [b.definition for b in group]
            schema = _ref(_request_name(sid, hooks[0].hook)) if len(hooks) == 1 else \
                {"oneOf": [_ref(_request_name(sid, d.hook)) for d in hooks]}
            out.append((f"/cds-services/{sid}", {"post": {
                "operationId": f"call-{sid}", "tags": ["CDS Hooks"],
                "summary": f"{hooks[0].title} ({', '.join(d.hook for d in hooks)})",
                "description": hooks[0].description, "security": secured,
                "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
                "responses": {
                    "200": {"description": "Cards (RESP-1; `{\"cards\": []}` when there is no advice).",
                            "content": {"application/json": {"schema": _ref("CdsResponse")}}},
                    "400": _error("Malformed request (REQ-2), named in the OperationOutcome's expression."),
                    "401": _UNAUTHORIZED,
                    "412": _error("Required data neither prefetched nor obtainable from fhirServer (PREFETCH-5)."),
                    "413": _error("The body is larger than the configured limit."),
                    "500": _error("Unexpected failure; logged with the hookInstance (ERR-4)."),
                }}}))
        return out
    if e == "cds.feedback":
        return [(f"/cds-services/{sid}/feedback", {"post": {
            "operationId": f"feedback-{sid}", "tags": ["CDS Hooks"], "summary": f"Feedback on {sid}'s cards (FEEDBACK-1..5)",
            "security": secured,
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("FeedbackRequest")}}},
            "responses": {"200": {"description": "Stored (duplicates tolerated, FEEDBACK-3); no body (FEEDBACK-5)."},
                          "400": _error("Malformed feedback (FEEDBACK-2)."), "401": _UNAUTHORIZED}}})
                for sid in sorted(runtime.services)]
    if e == "cds.healthz":
        return [(rule.rule, {"get": {"operationId": "healthz", "tags": ["Operations"], "summary": "Liveness: the process answers",
                                     "responses": {"200": {"description": "Alive.", "content": {"application/json": {
                                         "schema": {"type": "object", "required": ["status"],
                                                    "properties": {"status": {"const": "ok"}}}}}}}}})]
    if e == "cds.readyz":
        ready = {"type": "object", "required": ["status", "database"], "properties": {
            "status": {"enum": ["ok", "unavailable"]}, "database": {"type": "boolean"},
            "services": {"type": "integer"}, "models": {"type": "array", "items": {"type": "string"}}}}
        content = {"application/json": {"schema": ready}}
        return [(rule.rule, {"get": {"operationId": "readyz", "tags": ["Operations"],
                                     "summary": "Readiness: models loaded and the database reachable",
                                     "responses": {"200": {"description": "Ready.", "content": content},
                                                   "503": {"description": "The database is unreachable.", "content": content}}}})]
    if e == "metrics_view":
        return [(rule.rule, {"get": {"operationId": "metrics", "tags": ["Operations"],
                                     "summary": "Prometheus metrics (text exposition format)",
                                     "responses": {"200": {"description": "Metrics; no patient data.",
                                                           "content": {"text/plain": {"schema": {"type": "string"}}}}}}})]
    if e == "openapi":
        return [(rule.rule, {"get": {"operationId": "openapi", "tags": ["Operations"], "summary": "This OpenAPI document",
                                     "responses": {"200": {"description": "OpenAPI 3.1.",
                                                           "content": {"application/json": {"schema": {"type": "object"}}}}}}})]
    return [_generic(app, rule, methods)]


def _generic(app: Flask, rule, methods: list[str]) -> tuple[str, dict]:
    """A route this module has no schema for (the UI's pages): its docstring's first line and its parameters."""
    view = app.view_functions[rule.endpoint]
    doc = inspect.getdoc(view) or ""
    summary = doc.split("\n\n")[0].replace("\n", " ").strip() or f"{rule.endpoint} (no description)"
    path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
    params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in rule.arguments]
    tag = rule.endpoint.split(".")[0] if "." in rule.endpoint else "Other"
    ops = {}
    for m in methods:
        op: dict[str, Any] = {"operationId": f"{rule.endpoint}-{m}", "tags": [tag], "summary": summary,
                              "responses": {"200": {"description": "See the summary."}}}
        if params:
            op["parameters"] = params
        ops[m] = op
    return path, ops


def _request_name(sid: str, hook: str) -> str:
    return f"Request_{sid}_{hook}"


def _version() -> str:
    try:
        return version("cds-hooks-ml")
    except Exception:  # not installed (a bare checkout): the document still has a version
        return "0.0.0+unknown"


# -------------------------------------------------------------------------------------- schemas

def _schemas(runtime) -> dict:
    s: dict[str, Any] = dict(_STATIC_SCHEMAS)
    for name, spec in HOOKS.items():
        s[f"Context_{name}"] = _context_schema(spec)
    for sid, group in runtime.services.items():
        for b in group:
            d = b.definition
            prefetch = {key: {"description": f"Result of `{p.query}` (on_error: {p.on_error}); null = no data (PREFETCH-6)",
                              "oneOf": [_ref("FhirResource"), {"type": "null"}]} for key, p in d.prefetch.items()}
            s[_request_name(sid, d.hook)] = {
                "type": "object", "required": ["hook", "hookInstance", "context"],
                "description": f"A `{d.hook}` request for {sid} (REQ-1).",
                "properties": {
                    "hook": {"const": d.hook},
                    "hookInstance": {"type": "string", "minLength": 1, "description": "UUID of this hook firing (IDEM-1)."},
                    "fhirServer": {"type": "string", "format": "uri", "pattern": "^https?://"},
                    "fhirAuthorization": _ref("FhirAuthorization"),
                    "context": _ref(f"Context_{d.hook}"),
                    "prefetch": {"type": ["object", "null"], "properties": prefetch,
                                 "description": "Absent keys are fetched from fhirServer, else 412 (PREFETCH-4/5)."},
                    "extension": {"type": "object"},
                },
                "dependentRequired": {"fhirAuthorization": ["fhirServer"]},  # invariant cds-r-1
            }
    return s


def _context_schema(spec) -> dict:
    props: dict[str, Any] = {
        "userId": {"type": "string", "pattern": r"^(" + "|".join(spec.user_types) + r")/[A-Za-z0-9\-.]{1,64}$",
                   "description": "Relative reference to the user (HOOKDEF-4)."},
        "patientId": {"type": "string", "pattern": r"^[A-Za-z0-9\-.]{1,64}$"},
        "encounterId": {"type": "string", "pattern": r"^[A-Za-z0-9\-.]{1,64}$"},
    }
    for name in spec.bundles:
        props[name] = _ref("Bundle") if name != "appointments" else \
            {"oneOf": [_ref("Bundle"), {"type": "array", "items": _ref("FhirResource"),
                                        "description": "The bare array of the 1.0.1 examples (HOOK-AB-4), accepted too."}]}
    if "selections" in spec.required:
        props["selections"] = {"type": "array", "minItems": 1,
                               "items": {"type": "string", "pattern": r"^[A-Za-z]+/[A-Za-z0-9\-.]{1,64}$"}}
    return {"type": "object", "required": list(spec.required), "properties": props,
            "description": f"Context of the {spec.name} hook (Hook Library 1.0.1)."}


_CODING = {"type": "object", "required": ["system", "code"], "description": "CODING-1",
           "properties": {"system": {"type": "string", "minLength": 1}, "code": {"type": "string", "minLength": 1},
                          "display": {"type": "string", "minLength": 1}}}
_ACTION_BASE = {
    "type": {"enum": list(ACTION_TYPES)},
    "description": {"type": "string", "minLength": 1},
    "resource": _ref("FhirResource"),
    "resourceId": {"type": "string", "pattern": r"^[A-Za-z]+/[A-Za-z0-9\-.]{1,64}$"},
    "extension": {"type": "object"},
}

_STATIC_SCHEMAS: dict[str, Any] = {
    "FhirResource": {"type": "object", "required": ["resourceType"],
                     "properties": {"resourceType": {"type": "string", "pattern": "^[A-Z][A-Za-z]+$"}},
                     "description": "A FHIR R4 resource in JSON (REQ-4)."},
    "Bundle": {"type": "object", "required": ["resourceType"],
               "properties": {"resourceType": {"const": "Bundle"}, "type": {"type": "string"},
                              "entry": {"type": "array", "items": {"type": "object",
                                                                   "properties": {"resource": {"$ref": "#/components/schemas/FhirResource"}}}}}},
    "OperationOutcome": {"type": "object", "required": ["resourceType", "issue"], "description": "ERR-3",
                         "properties": {"resourceType": {"const": "OperationOutcome"},
                                        "issue": {"type": "array", "minItems": 1, "items": {
                                            "type": "object", "required": ["severity", "code"],
                                            "properties": {"severity": {"enum": ["fatal", "error", "warning", "information"]},
                                                           "code": {"type": "string"}, "diagnostics": {"type": "string"},
                                                           "expression": {"type": "array", "items": {"type": "string"}}}}}}},
    "Coding": _CODING,
    "OverrideReason": {**_CODING, "required": ["system", "code", "display"], "description": "OVR-1: display is required."},
    "Source": {"type": "object", "required": ["label"], "description": "SRC-1/2",
               "properties": {"label": {"type": "string", "minLength": 1}, "url": {"type": "string", "format": "uri"},
                              "icon": {"type": "string", "format": "uri"}, "topic": {"$ref": "#/components/schemas/Coding"}}},
    "Action": {"type": "object", "required": ["type", "description"], "description": "ACT-1 (delete: resourceId, no resource).",
               "properties": _ACTION_BASE,
               "allOf": [{"if": {"properties": {"type": {"const": "delete"}}},
                          "then": {"required": ["resourceId"], "not": {"required": ["resource"]}},
                          "else": {"required": ["resource"]}}]},
    "SystemAction": {"type": "object", "required": ["type"], "description": "SYSACT-2: description optional.",
                     "properties": _ACTION_BASE},
    "Suggestion": {"type": "object", "required": ["label"], "description": "SUGG-1",
                   "properties": {"label": {"type": "string", "minLength": 1}, "uuid": {"type": "string", "minLength": 1},
                                  "isRecommended": {"type": "boolean"},
                                  "actions": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/Action"}}}},
    "Link": {"type": "object", "required": ["label", "url", "type"], "description": "LINK-1..3",
             "properties": {"label": {"type": "string", "minLength": 1}, "url": {"type": "string", "format": "uri"},
                            "type": {"enum": list(LINK_TYPES)}, "appContext": {"type": "string"},
                            "autolaunchable": {"type": "boolean"}},
             "allOf": [{"if": {"required": ["appContext"]}, "then": {"properties": {"type": {"const": "smart"}}}}]},
    "Card": {"type": "object", "required": ["summary", "indicator", "source"], "description": "CARD-1..5",
             "properties": {
                 "uuid": {"type": "string", "minLength": 1},
                 "summary": {"type": "string", "minLength": 1, "maxLength": SUMMARY_MAX,
                             "description": f"CARD-2: <{SUMMARY_MAX + 1} characters."},
                 "detail": {"type": "string", "minLength": 1, "description": "GitHub-flavoured markdown."},
                 "indicator": {"enum": list(INDICATORS)},
                 "source": {"$ref": "#/components/schemas/Source"},
                 "suggestions": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/Suggestion"}},
                 "selectionBehavior": {"enum": list(SELECTION_BEHAVIORS)},
                 "overrideReasons": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/OverrideReason"}},
                 "links": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/Link"}},
                 "extension": {"type": "object", "minProperties": 1},
             },
             "dependentRequired": {"suggestions": ["selectionBehavior"]}},  # CARD-4
    "CdsResponse": {"type": "object", "required": ["cards"], "description": "RESP-1",
                    "properties": {"cards": {"type": "array", "items": {"$ref": "#/components/schemas/Card"}},
                                   "systemActions": {"type": "array", "minItems": 1,
                                                     "items": {"$ref": "#/components/schemas/SystemAction"}}}},
    "ServiceDescriptor": {"type": "object", "required": ["hook", "id", "description"], "description": "DISC-4",
                          "properties": {"hook": {"type": "string"}, "id": {"type": "string"}, "title": {"type": "string"},
                                         "description": {"type": "string"},
                                         "prefetch": {"type": "object", "minProperties": 1,
                                                      "additionalProperties": {"type": "string", "minLength": 1}},
                                         "usageRequirements": {"type": "string"}}},
    "DiscoveryResponse": {"type": "object", "required": ["services"],
                          "properties": {"services": {"type": "array", "items": {"$ref": "#/components/schemas/ServiceDescriptor"}}}},
    "FhirAuthorization": {"type": "object", "required": ["access_token", "token_type"], "description": "AUTHZ-1",
                          "properties": {"access_token": {"type": "string", "minLength": 1}, "token_type": {"const": "Bearer"},
                                         "expires_in": {"type": "integer"}, "scope": {"type": "string"},
                                         "subject": {"type": "string"}, "patient": {"type": "string"}}},
    "FeedbackItem": {"type": "object", "required": ["card", "outcome", "outcomeTimestamp"], "description": "FEEDBACK-2",
                     "properties": {
                         "card": {"type": "string", "minLength": 1},
                         "outcome": {"enum": list(FEEDBACK_OUTCOMES)},
                         "outcomeTimestamp": {"type": "string", "format": "date-time"},
                         "acceptedSuggestions": {"type": "array", "minItems": 1, "items": {
                             "type": "object", "required": ["id"], "properties": {"id": {"type": "string", "minLength": 1}}}},
                         "overrideReason": {"type": "object", "minProperties": 1, "properties": {
                             "reason": {"$ref": "#/components/schemas/Coding"}, "userComment": {"type": "string"}}},
                     },
                     "allOf": [{"if": {"properties": {"outcome": {"const": "accepted"}}},
                                "then": {"required": ["acceptedSuggestions"]}}]},  # cds-fb-2
    "FeedbackRequest": {"type": "object", "required": ["feedback"],
                        "properties": {"feedback": {"type": "array", "minItems": 1,
                                                    "items": {"$ref": "#/components/schemas/FeedbackItem"}}}},
}


def init_openapi(app: Flask) -> None:
    @app.get("/openapi.json")
    def openapi():
        """This OpenAPI document."""
        return Response(json.dumps(build_openapi(current_app)), mimetype="application/json")
