"""Decoding untrusted JSON within a nesting limit: fetched FHIR pages and SMART configurations, and
request bodies (`cds_service/http/body.py`).

Nesting deeper than `max_depth` is refused, and so is nesting deep enough to exhaust the parser's
recursion (a 100,000-deep array): the caller gets a JsonRejected, never a RecursionError that would
end as a 500.

The parser is orjson (Rust; about 2.5x faster than `json` on a 50 KB prefetch body, measured in
bench/profile_s1.py). It enforces RFC 8259 strictly: no `NaN`/`Infinity`, no number that overflows a
double (`1e999`, a 400-digit integer), no lone surrogates. Whatever orjson refuses is decoded again by
the standard library, as before orjson was used, so that a caller that wants to know why (where the
non-finite number is: `body.py`) or to keep such values (fetched pages keep `NaN`, `Infinity` and `1e999`
as Python floats, for the extractors to call invalid: `resources.read_number`) still can.

The depth limit costs no second walk of the decoded value: orjson refuses nesting deeper than its own
fixed limit (1024 containers, probed at import), so the text is decoded inside `ORJSON_LIMIT -
(max_depth - 1)` wrapping arrays. It decodes only if the value nests at most `max_depth - 1` containers,
i.e. (a scalar counting one level below its container) at most `max_depth` levels — within the limit.
Refused there, the value may still be exactly at the limit (containers `max_depth` deep with no scalar
at the bottom), and the exact walk (`depth`) decides: that walk runs only for such rare bodies.
"""
from __future__ import annotations

import json
from typing import Any, Callable

import orjson


class JsonRejected(ValueError):
    """The text is not JSON we accept; `reason` is short and quotes nothing from the input."""

    def __init__(self, reason: str, *, too_deep: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.too_deep = too_deep  # nested deeper than allowed (else: not valid JSON)


def _orjson_limit() -> int | None:
    """The deepest container nesting orjson decodes (1024 in orjson 3.x); None if it has no such limit
    or it is not where we expect it (the depth is then always checked by walking the value)."""
    def decodes(n: int) -> bool:
        try:
            orjson.loads(b"[" * n + b"]" * n)
            return True
        except orjson.JSONDecodeError:
            return False

    for limit in (1024,):
        if decodes(limit) and not decodes(limit + 1):
            return limit
    return None


ORJSON_LIMIT = _orjson_limit()


def loads(raw: str | bytes, max_depth: int, *, fallback: Callable[[str | bytes], Any] = json.loads) -> Any:
    """Decode `raw`; raises JsonRejected (not valid JSON, or nested deeper than `max_depth`).

    Text orjson refuses (see the module's docstring) is decoded by `fallback` (`json.loads`, which keeps
    non-finite numbers; `body.py` passes its own, which names them); its ValueError means not valid JSON.
    """
    value = _fast(raw, max_depth)
    if value is not _REFUSED:
        return value
    try:
        value = fallback(raw)
    except RecursionError:
        raise JsonRejected(f"nested deeper than {max_depth} levels", too_deep=True) from None
    except (ValueError, UnicodeDecodeError):
        raise JsonRejected("not valid JSON") from None
    if depth(value) > max_depth:
        raise JsonRejected(f"nested deeper than {max_depth} levels", too_deep=True)
    return value


_REFUSED = object()


def _fast(raw: str | bytes, max_depth: int) -> Any:
    """orjson's decoding of `raw` when it proves the value within `max_depth`, else _REFUSED."""
    pad = ORJSON_LIMIT - (max_depth - 1) if ORJSON_LIMIT and 1 <= max_depth <= ORJSON_LIMIT else 0
    if not pad:
        return _REFUSED
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    try:
        value = orjson.loads(b"[" * pad + raw + b"]" * pad)
    except orjson.JSONDecodeError:
        return _REFUSED
    # Each of our arrays must hold exactly one element: `raw` that closes some of them and opens its own
    # (`1],[2`) leaves an array of two, and empty `raw` an empty one. Every level on the way down is one of
    # our arrays until `raw`'s value, so unpacking one element per level checks exactly that (and costs a
    # twentieth of an isinstance/len test per level).
    try:
        for _ in range(pad):
            value, = value
    except (ValueError, TypeError):
        return _REFUSED
    return value


def depth(value: Any) -> int:
    """Nesting depth of a decoded JSON value: a scalar is 1, `{"a": 1}` is 2."""
    # Only containers go on the stack; a scalar just counts as one level below its container.
    # Same result as walking every value, about 4x less CPU on a prefetch-sized body.
    if not isinstance(value, (dict, list)):
        return 1
    deepest, stack = 1, [(value, 1)]
    while stack:
        item, d = stack.pop()
        if d > deepest:
            deepest = d
        for v in (item.values() if isinstance(item, dict) else item):
            if isinstance(v, (dict, list)):
                stack.append((v, d + 1))
            elif d >= deepest:
                deepest = d + 1
    return deepest
