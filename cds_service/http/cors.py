"""CORS for browser-based EHRs such as the CDS Hooks Sandbox (CORS-1).

Origins come from an allow-list (`cors_origins`); "*" is refused by the settings. Preflight
`OPTIONS` is answered for every CDS Hooks endpoint with the methods and headers they need.
Both functions are request hooks, registered in `request_hooks.py`.

Private Network Access: Chrome asks a public page (the Sandbox at https://sandbox.cds-hooks.org) before
it lets it call a service on a private or loopback address (a service on 127.0.0.1, a hospital network):
the preflight carries `Access-Control-Request-Private-Network: true` and the answer must carry
`Access-Control-Allow-Private-Network: true` (WICG Private Network Access, "CORS-preflight"). We say so
only when `cors_allow_private_network` is on, to an allow-listed origin, and only when asked.
"""
from __future__ import annotations

from flask import Response, request

from cds_service.runtime import get_runtime


def answer_preflight() -> Response | None:
    """Before-request hook: a preflight is answered here, and no later before-request hook runs."""
    if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
        return Response(status=204)
    return None


def add_cors_headers(resp: Response) -> Response:
    """After-request hook: the CORS headers, for an allow-listed Origin only."""
    origin = request.headers.get("Origin")
    settings = get_runtime().settings
    if origin and origin in settings.cors_origins:
        resp.headers["Access-Control-Allow-Origin"] = origin
        resp.headers["Vary"] = "Origin"
        resp.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        resp.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        resp.headers["Access-Control-Max-Age"] = "600"
        if (settings.cors_allow_private_network and request.method == "OPTIONS"
                and request.headers.get("Access-Control-Request-Private-Network", "").lower() == "true"):
            resp.headers["Access-Control-Allow-Private-Network"] = "true"
    return resp
