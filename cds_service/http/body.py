"""Reading a JSON request body within limits: size (413) and nesting depth (400) guard the parser,
and a number that is not a finite IEEE double is refused (400).

Flask's `MAX_CONTENT_LENGTH` (set by the factory to `max_body_bytes`) refuses a declared length
over the limit before the body is read; the checks here cover the rest. The body is decoded, and its
depth limited, as fetched FHIR pages are (`fhir_adapters.json_limits`: orjson, no second walk).

Non-finite numbers: RFC 8259 (section 6) has no NaN or Infinity, and FHIR's JSON numbers are decimals,
but Python's `json` accepts `NaN`, `Infinity` and `-Infinity`, and turns `1e999` into infinity. A creatinine
of NaN compares false with every threshold, so a rule would silently not fire; such a body is invalid
input and is answered 400 naming where the number is. Whatever parser reads the body must keep this check:
orjson refuses such numbers, and the body it refuses is decoded again by `_loads` below, which names them.
"""
from __future__ import annotations

import json
import math
from typing import Any

from flask import request

from cds_service.errors import InvalidRequest, PayloadTooLarge
from fhir_adapters.json_limits import JsonRejected, loads


def read_json_body(max_bytes: int, max_depth: int) -> Any:
    """Decode the request's body as JSON; raises PayloadTooLarge (413) or InvalidRequest (400)."""
    raw = request.get_data(cache=True)
    # A chunked body (no Content-Length) is cut at MAX_CONTENT_LENGTH by Werkzeug, not refused: reaching
    # the limit means there was more.
    chunked_at_limit = request.content_length is None and len(raw) >= max_bytes
    if len(raw) > max_bytes or chunked_at_limit:
        raise PayloadTooLarge(f"The body exceeds {max_bytes} bytes.")
    try:
        return loads(raw, max_depth, fallback=_loads)
    except JsonRejected as exc:
        if exc.too_deep:
            raise InvalidRequest(f"The body is nested deeper than {max_depth} levels.", expression="$") from None
        raise InvalidRequest("The body is not valid JSON.", expression="$") from None


class _NonFinite:
    """Stands in for a number that is not a finite double, so that its place can be named."""

    def __init__(self, text: str):
        self.text = text


# An integer this long cannot be a double (about 1.8e308); its conversion would overflow later.
_MAX_INT_DIGITS = 308


def _loads(raw: str | bytes) -> Any:
    """`json.loads` that marks NaN, ±Infinity, and numbers beyond a double's range; raises InvalidRequest."""
    found: list[_NonFinite] = []

    def mark(text: str) -> _NonFinite:
        found.append(_NonFinite(text))
        return found[-1]

    def parse_float(text: str) -> float | _NonFinite:
        value = float(text)
        return value if math.isfinite(value) else mark(text)

    def parse_int(text: str) -> int | _NonFinite:
        return int(text) if len(text.lstrip("-")) <= _MAX_INT_DIGITS else mark(text)

    body = json.loads(raw, parse_constant=mark, parse_float=parse_float, parse_int=parse_int)
    if found:
        where = _path_to(body, found[0]) or "$"
        shown = found[0].text if len(found[0].text) <= 12 else found[0].text[:12] + "…"
        raise InvalidRequest(f"The body holds a number that is not finite or is out of range ({shown} at {where}); "
                             "JSON numbers must be finite.", expression=where)
    return body


def _path_to(value: Any, target: object, path: str = "") -> str | None:
    """Where `target` sits in a decoded body, as `prefetch.vitals.entry[0].resource.valueQuantity.value`."""
    if value is target:
        return path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(item, (dict, list)) or item is target:
            sub = f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else str(key))
            hit = _path_to(item, target, sub)
            if hit is not None:
                return hit
    return None
