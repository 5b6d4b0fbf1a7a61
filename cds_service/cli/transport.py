"""The HTTP calls `fire` and `check` make: one `requests.Session`, a timeout on every call."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import requests

from cds_service.cli.auth import Auth
from cds_service.cli.errors import CliError
from cds_service.cli.unauthorized import explain_unauthorized

DEFAULT_URL = "http://127.0.0.1:8080"


@dataclass
class Answer:
    status: int
    body: Any
    text: str
    content_type: str | None
    latency_ms: float
    headers: Mapping[str, str] = field(default_factory=dict)  # case-insensitive (requests' own mapping)


def call(session: requests.Session, method: str, url: str, auth: Auth, *, body: Any = None, timeout: float = 10.0,
         headers: dict | None = None) -> Answer:
    """One HTTP call with a timeout; a non-JSON answer keeps `body` None."""
    h = {"Accept": "application/json", **auth.headers(url), **(headers or {})}
    start = time.perf_counter()
    resp = session.request(method, url, json=body, headers=h, timeout=(min(timeout, 5.0), timeout))
    latency = (time.perf_counter() - start) * 1000
    try:
        decoded = resp.json() if resp.content else None
    except ValueError:
        decoded = None
    return Answer(resp.status_code, decoded, resp.text, resp.headers.get("Content-Type"), latency, resp.headers)


def discover(session: requests.Session, base: str, auth: Auth, timeout: float, *, config: str | None = None) -> list[dict]:
    url = f"{base}/cds-services"
    answer = call(session, "GET", url, auth, timeout=timeout)
    if answer.status == 401:
        why = explain_unauthorized(answer.headers, auth, url, config=config, session=session)
        raise CliError(f"{url} answered 401 (unauthorized):\n" + "\n".join(f"  {line}" for line in why))
    if answer.status != 200 or not isinstance(answer.body, dict) or not isinstance(answer.body.get("services"), list):
        raise CliError(f"{base}/cds-services answered HTTP {answer.status} without a services list")
    return [d for d in answer.body["services"] if isinstance(d, dict)]
