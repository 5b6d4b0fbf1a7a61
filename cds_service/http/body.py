"""Reading a JSON request body within limits: size (413), nesting depth and non-finite numbers (400).

Flask's `MAX_CONTENT_LENGTH` (set by the factory to `max_body_bytes`) refuses a declared length
over the limit before the body is read; the checks here cover the rest. The decoding policy itself
(`fhir_adapters.json_limits`) is the one fetched FHIR pages go through too.
"""
from __future__ import annotations

from typing import Any

from flask import request

from fhir_adapters.json_limits import JsonRejected, loads

from cds_service.errors import InvalidRequest, PayloadTooLarge


def read_json_body(max_bytes: int, max_depth: int) -> Any:
    """Decode the request's body as JSON; raises PayloadTooLarge (413) or InvalidRequest (400)."""
    raw = request.get_data(cache=True)
    # A chunked body (no Content-Length) is cut at MAX_CONTENT_LENGTH by Werkzeug, not refused: reaching
    # the limit means there was more.
    chunked_at_limit = request.content_length is None and len(raw) >= max_bytes
    if len(raw) > max_bytes or chunked_at_limit:
        raise PayloadTooLarge(f"The body exceeds {max_bytes} bytes.")
    try:
        return loads(raw, max_depth)
    except JsonRejected as exc:
        raise InvalidRequest(f"The body is not acceptable JSON: {exc.reason}.", expression="$") from None
