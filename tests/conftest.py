"""Shared fixtures: a fresh app per test (flaskr style), its test client, and the fixture loader.

Helpers live in the `cds_testing` package (tests/cds_testing/); fixtures that need pytest live here.
"""
from __future__ import annotations

import functools
import json

import pytest

from cds_testing.apps import build_app
from cds_testing.paths import FIXTURES
from cds_testing.security_log_guard import no_secrets_in_any_log_record  # noqa: F401  (session-wide log scan)


@pytest.fixture
def make_app(tmp_path):
    """Factory: `make_app(services=None, **settings)` → a new app on its own SQLite file (auth off unless
    overridden); `services` = every service file (None), only these ids (list) or these texts (dict):
    see cds_testing.apps."""
    return functools.partial(build_app, tmp_path)


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    """The Flask test client of the default app (every service file, auth off)."""
    return app.test_client()


@pytest.fixture(scope="module")
def module_client(tmp_path_factory):
    """The Flask test client of the default app, built once per module: for modules whose tests only
    POST hooks and read back nothing the app stores (the order-time and bedside services)."""
    return build_app(tmp_path_factory.mktemp("cds")).test_client()


@pytest.fixture(scope="session")
def spark():
    """One local Spark session (`local[2]`) for every test that runs a population job: the population jobs
    (tests/test_population_spark.py) and training through the service's features (tests/test_training_from_fhir.py)."""
    import shutil

    from cds_testing.optional import missing, require_module

    require_module("pyspark", "pip install -e '.[population]'")
    if shutil.which("java") is None:
        missing("no Java runtime: run tests/setup.d/50-java.sh (scripts/test does)")
    from cds_service.population import spark as sp

    session = sp.session("local[2]")
    yield session
    session.stop()


@pytest.fixture
def load_fixture():
    def load(name: str):
        return json.loads((FIXTURES / name).read_text())

    return load
