"""fhir_adapters.json_limits: orjson within a depth limit, the standard library for what orjson refuses.

The depth limit is enforced by decoding inside wrapping arrays (orjson's own nesting limit), so these
tests check the exact boundary, that the text cannot escape the wrapping, and that the decoded value is
the one the standard library gives.
"""
from __future__ import annotations

import json
import math

import pytest

from fhir_adapters import json_limits
from fhir_adapters.json_limits import JsonRejected, depth, loads


def nested(levels: int, leaf: str = "") -> str:
    """`levels` nested arrays, the innermost holding `leaf` (empty: no scalar at the bottom)."""
    return "[" * levels + leaf + "]" * levels


def test_orjson_limit_is_known():
    """The fast path is in use (else every body would be walked a second time)."""
    assert json_limits.ORJSON_LIMIT == 1024


@pytest.mark.parametrize("max_depth", [1, 2, 5, 64, 500])
def test_the_boundary_is_exact_with_and_without_a_scalar_at_the_bottom(max_depth):
    # Containers only: depth = number of containers.
    assert loads(nested(max_depth), max_depth) is not None
    with pytest.raises(JsonRejected) as exc:
        loads(nested(max_depth + 1), max_depth)
    assert exc.value.too_deep
    # A scalar counts one level below its container.
    if max_depth > 1:
        assert loads(nested(max_depth - 1, "1"), max_depth) is not None
    with pytest.raises(JsonRejected):
        loads(nested(max_depth, "1"), max_depth)


def test_a_limit_beyond_orjsons_is_checked_by_the_walk():
    assert depth(loads(nested(300), 2000)) == 300
    with pytest.raises(JsonRejected):
        loads(nested(3000), 2000)  # the standard library's recursion limit: refused, not a RecursionError


@pytest.mark.parametrize("text", ["1],[2", "]", "[", "", "1]", "[1", "0]]]][[[[0", '{"a":1}],[{"b":2}', "1 2",
                                  '"a"],["b'])
def test_text_cannot_close_the_wrapping_arrays(text):
    """Text that is not JSON by itself is not JSON once wrapped either: it is refused, never half-decoded."""
    with pytest.raises(JsonRejected) as exc:
        loads(text, 64)
    assert not exc.value.too_deep
    with pytest.raises(ValueError):
        json.loads(text)


def test_same_value_as_the_standard_library(s1_body):
    assert loads(s1_body, 64) == json.loads(s1_body)
    assert loads(s1_body.decode(), 64) == json.loads(s1_body)


def test_fetched_pages_keep_non_finite_numbers_for_the_extractors():
    """orjson refuses NaN and 1e999; the standard library, as before, keeps them as floats."""
    value = loads(b'{"a": NaN, "b": 1e999, "c": -Infinity, "d": 1.5}', 64)
    assert math.isnan(value["a"]) and value["b"] == math.inf and value["c"] == -math.inf and value["d"] == 1.5


def test_a_deep_body_that_orjson_refuses_is_still_limited():
    """Text orjson refuses (here: NaN) goes through the standard library, and the walk limits its depth."""
    with pytest.raises(JsonRejected) as exc:
        loads(nested(70, "NaN"), 64)
    assert exc.value.too_deep
    with pytest.raises(JsonRejected) as exc:
        loads(nested(100_000, "NaN"), 64)  # RecursionError in the standard library
    assert exc.value.too_deep


@pytest.fixture(scope="module")
def s1_body() -> bytes:
    """A prefetch-sized body (every kind of JSON value, unicode, escapes)."""
    obs = {"resourceType": "Observation", "id": "o-1", "status": "final", "valueQuantity": {"value": 5.25, "unit": "mmol/L"},
           "note": [{"text": "caf\u00e9 \"quoted\" \\ back\nslash \u2603"}], "flags": [True, False, None], "n": -12,
           "big": 12345678901234567}
    return json.dumps({"hook": "patient-view", "prefetch": {"x": {"resourceType": "Bundle",
                                                                  "entry": [{"resource": dict(obs, id=f"o-{i}")} for i in range(200)]}}}).encode()
