"""Optional test dependencies (the `train`, `redis` extras; Debian's PostgreSQL and Redis servers).

On a developer's machine a test whose dependency is absent is skipped, saying what installs it. Under
`scripts/test` (the README's test command, which CI runs; it sets `REQUIRE_ALL_TEST_DEPS=1` after installing
every extra and running `tests/setup.d/*.sh`) or with `CI=true`, the same absence fails the run instead of
passing it silently.
"""
from __future__ import annotations

import importlib.util
import os
from typing import NoReturn

import pytest

IN_CI = any(os.environ.get(name, "").lower() in ("1", "true", "yes") for name in ("REQUIRE_ALL_TEST_DEPS", "CI"))


def missing(reason: str, *, allow_module_level: bool = False) -> NoReturn:
    """Skip (outside CI) or fail (in CI) because `reason` names something not installed."""
    if IN_CI:
        pytest.fail(f"{reason} (CI installs every test dependency)", pytrace=False)
    pytest.skip(reason, allow_module_level=allow_module_level)


def require_module(name: str, installed_by: str, *, allow_module_level: bool = False) -> None:
    """`missing(...)` unless module `name` is installed (found without importing it)."""
    if importlib.util.find_spec(name) is None:
        missing(f"{name} is not installed ({installed_by})", allow_module_level=allow_module_level)
