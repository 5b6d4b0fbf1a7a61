"""The floor for S1: a WSGI app under the same gunicorn configuration that answers every service call
with a fixed card and does no CDS work (it reads the body, as any server must, but never parses it).

`BENCH_FLOOR_BODY` names a file holding the exact response bytes to send (the bench passes the
service's own answer, so both servers put the same bytes on the wire); without it a minimal card.
`/healthz` answers so the bench can wait for readiness the same way for both servers.
"""
from __future__ import annotations

import json
import os

from flask import Flask, Response, request

_DEFAULT = {"cards": [{"uuid": "00000000-0000-4000-8000-000000000000", "summary": "Fixed card (benchmark floor)",
                       "indicator": "info", "source": {"label": "benchmark"}}]}


def create_floor_app() -> Flask:
    path = os.environ.get("BENCH_FLOOR_BODY")
    body = open(path, "rb").read() if path else json.dumps(_DEFAULT).encode()
    app = Flask(__name__)

    @app.post("/cds-services/<service_id>")
    def service(service_id: str):
        request.get_data()  # the body crosses the wire and is read, like in the real service
        return Response(body, mimetype="application/json")

    @app.get("/healthz")
    def healthz():
        return Response(b'{"status":"ok"}', mimetype="application/json")

    return app


def trivial_wsgi(environ, start_response):
    """The cheapest possible WSGI answer: used to measure what the load generator can drive."""
    wsgi_input = environ["wsgi.input"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        wsgi_input.read(length)
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "15")])
    return [b'{"status":"ok"}']
