"""A session-wide guard (SEC-10): every log record emitted while the WHOLE test suite
runs is rendered as the service would write it and searched for JWTs and bearer credentials. Any
hit fails the session (reported as an error at teardown, naming the logger and the test).

Imported by `conftest.py` as an autouse, session-scoped fixture. The dedicated patient-data check
(names, birth dates, identifiers through every outcome) is `test_security_audit.py`.
"""
from __future__ import annotations

import logging
import os
import re

import pytest

# A compact JWS: base64url('{"...') header, payload, signature. Both JSON parts start with '{"' → "eyJ".
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
BEARER = re.compile(r"\bBearer\s+[A-Za-z0-9._~+/=-]{8,}")


class SecretScanner(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.hits: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        from cds_service.logs import JsonFormatter

        try:
            rendered = [JsonFormatter().format(record), record.getMessage()]
        except Exception:  # a record that cannot even be formatted is not ours to judge
            return
        if record.exc_info:
            rendered.append(logging.Formatter().formatException(record.exc_info))
        for text in rendered:
            match = JWT.search(text) or BEARER.search(text)
            if match:
                test = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0]
                self.hits.append(f"{record.name} during {test}: …{match.group(0)[:24]}…")
                return


@pytest.fixture(autouse=True, scope="session")
def no_secrets_in_any_log_record():
    scanner = SecretScanner()
    root = logging.getLogger()
    root.addHandler(scanner)
    try:
        yield scanner
    finally:
        root.removeHandler(scanner)
    assert scanner.hits == [], "log records carried a JWT or bearer credential:\n" + "\n".join(scanner.hits[:20])
