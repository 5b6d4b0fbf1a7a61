"""CORS for browser-based EHRs such as the CDS Hooks Sandbox (CORS-1).

Origins come from an allow-list (`cors_origins`); "*" is refused by the settings. Preflight
`OPTIONS` is answered for every CDS Hooks endpoint with the methods and headers they need.
"""
from __future__ import annotations

from flask import Flask, Response, request


def init_cors(app: Flask, origins: tuple[str, ...]) -> None:
    allowed = set(origins)

    @app.before_request
    def _preflight():
        if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
            return Response(status=204)
        return None

    @app.after_request
    def _headers(resp: Response) -> Response:
        origin = request.headers.get("Origin")
        if origin and origin in allowed:
            resp.headers["Access-Control-Allow-Origin"] = origin
            resp.headers["Vary"] = "Origin"
            resp.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            resp.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            resp.headers["Access-Control-Max-Age"] = "600"
        return resp
