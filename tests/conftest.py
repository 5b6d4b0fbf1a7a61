"""Shared fixtures: a fresh app per test (flaskr style), a client, and FHIR builders."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from security_log_guard import no_secrets_in_any_log_record  # noqa: F401  (issue #6: session-wide log scan)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
SPEC_EXAMPLES = FIXTURES / "spec-examples"  # copies of the CDS Hooks examples: see its SOURCES.md


@pytest.fixture
def make_app(tmp_path):
    """Factory: `make_app(**overrides)` → a new app on its own SQLite file (auth off unless overridden)."""
    from cds_service import create_app

    def factory(**overrides):
        settings = {"auth_required": False, "database_url": f"sqlite:///{tmp_path}/cds.sqlite3",
                    "public_base_url": "https://cds.example.org"}
        settings.update(overrides)
        return create_app(settings, env={})

    return factory


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def load_fixture():
    def load(name: str):
        return json.loads((FIXTURES / name).read_text())

    return load
