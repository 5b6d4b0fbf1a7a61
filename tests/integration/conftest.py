"""Session-scoped real servers for the integration tests (127.0.0.1, ephemeral ports)."""
from __future__ import annotations

import pytest

from cds_testing.fhir_server import running_fhir_server


@pytest.fixture(scope="session")
def fhir_server():
    """A real FHIR R4 server (Medplum's engine, tests/fhir_server/) for the whole session; killed after."""
    with running_fhir_server() as base:
        yield base
