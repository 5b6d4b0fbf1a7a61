"""Decoding untrusted JSON within limits: one policy for request bodies and fetched FHIR pages.

- Non-finite numbers are refused: `NaN`, `Infinity` (Python's json accepts them, RFC 8259 §6 does
  not) and numbers that overflow a float (`1e400` decodes to infinity), so no infinite or NaN value
  ever reaches a feature, a model or a stored row.
- Nesting deeper than `max_depth` is refused, and so is nesting deep enough to exhaust the parser's
  recursion (a 100,000-deep array raises RecursionError inside `json.loads`).
"""
from __future__ import annotations

import json
import math
from typing import Any


class JsonRejected(ValueError):
    """The text is not JSON we accept; `reason` is short and quotes nothing from the input."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _no_constant(_name: str) -> Any:
    raise JsonRejected("NaN and Infinity are not JSON numbers")


_FLOAT_MAX = 1.7976931348623157e308

def loads(raw: str | bytes, max_depth: int) -> Any:
    """Decode `raw`; raises JsonRejected (not valid JSON, a non-finite number, or too deep)."""
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise JsonRejected(f"nested deeper than {max_depth} levels") from None
    except JsonRejected:
        raise
    except (ValueError, UnicodeDecodeError):
        raise JsonRejected("not valid JSON") from None
    deepest, finite = _walk(value)
    if not finite:
        raise JsonRejected("a number is out of range")
    if deepest > max_depth:
        raise JsonRejected(f"nested deeper than {max_depth} levels")
    return value


def depth(value: Any) -> int:
    """Nesting depth of a decoded JSON value: a scalar is 1, `{"a": 1}` is 2."""
    return _walk(value)[0]


def _out_of_range(v: Any) -> bool:
    # 1e400 decodes to inf; an integer past the float range overflows where a feature converts it.
    return (v.__class__ is float and not math.isfinite(v)) or (v.__class__ is int and not -_FLOAT_MAX <= v <= _FLOAT_MAX)


def _walk(value: Any) -> tuple[int, bool]:
    """(nesting depth, every number finite) in one pass without recursion."""
    # Only containers go on the stack; a scalar just counts as one level below its container.
    if not isinstance(value, (dict, list)):
        return 1, not _out_of_range(value)
    deepest, finite, stack = 1, True, [(value, 1)]
    while stack:
        item, d = stack.pop()
        if d > deepest:
            deepest = d
        for v in (item.values() if isinstance(item, dict) else item):
            if isinstance(v, (dict, list)):
                stack.append((v, d + 1))
            else:
                if d >= deepest:
                    deepest = d + 1
                if (v.__class__ is float or v.__class__ is int) and _out_of_range(v):
                    finite = False
    return deepest, finite
