"""SMART App Launch of the explanation page: the app's side of an EHR launch (LINK-1/LINK-2).

The EHR opens a card's `smart` link as `{base}/smart/launch?iss=<its FHIR base>&launch=<opaque>`.

1. `begin`: `iss` must be a FHIR server that a configured EHR may send us *and* for which we have a
   SMART client id (the outbound allow-list: nothing is fetched from anywhere else).
   `{iss}/.well-known/smart-configuration` is read (timeout, no redirect, size cap); its
   authorization and token endpoints must be on the origin of `iss` or on the EHR's
   `smart_auth_origins`. The browser is then sent to the authorization endpoint with a fresh `state`
   and a PKCE S256 challenge (SMART App Launch 2.0 requires S256; we never send `plain`).
2. `finish`: the code is exchanged at the token endpoint with the PKCE verifier. The token response
   carries the card's `appContext` (LINK-2), which names the explanation to show.

The access token is neither kept nor logged: the page reads nothing from the FHIR server.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlencode, urlsplit

import requests

from cds_service.config import Settings
from cds_service.errors import CdsError
from cds_service.security.outbound import normalize_base, normalized_bases, read_capped
from cds_service.security.trusted_clients import is_loopback
from fhir_adapters.json_limits import JsonRejected, loads
from fhir_adapters.urls import normalize_url

log = logging.getLogger("cds_service.smart")

MAX_DOCUMENT_BYTES = 64 * 1024
MAX_DOCUMENT_DEPTH = 16  # a SMART configuration or token response is a flat object with a few arrays
MAX_PARAM_CHARS = 4096


class SmartLaunchError(CdsError):
    """A launch that cannot go on. 400: the launch request itself; 403: an EHR we do not know;
    502: the EHR's authorization server failed or answered something unusable."""

    def __init__(self, message: str, *, status: int = 400, code: str = "invalid"):
        super().__init__(message)
        self.status, self.code = status, code


@dataclass(frozen=True)
class LaunchTarget:
    """Who we are to one EHR: the FHIR base it launches with, our client id, where its OAuth may live."""

    iss: str  # normalised FHIR base URL
    client_id: str
    auth_origins: frozenset[str]
    client_iss: str = ""  # the configured client (its JWT issuer) this FHIR server belongs to; '' auth off


@dataclass(frozen=True)
class PendingLaunch:
    """What the callback needs, kept server-side under `state` (smart_state) until it is used once."""

    state: str
    iss: str
    client_id: str
    token_endpoint: str
    redirect_uri: str
    code_verifier: str
    created_at: float
    client_iss: str = ""


@dataclass(frozen=True)
class TokenResult:
    app_context: str | None
    patient: str | None
    scope: str | None


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def target_for(settings: Settings, iss: str) -> LaunchTarget:
    """The launch target for `iss`, or SmartLaunchError: unknown EHRs get no request at all."""
    if not isinstance(iss, str) or not iss.strip() or len(iss) > 2048:
        raise SmartLaunchError("The launch is missing its 'iss' parameter (the EHR's FHIR base URL).")
    try:
        base = normalize_base(iss)
    except ValueError:
        raise SmartLaunchError("'iss' is not a FHIR base URL.") from None
    if base.startswith("http://") and not (settings.fhir_allow_http or is_loopback(urlsplit(base).hostname or "")):
        raise SmartLaunchError("'iss' must be an https URL: the launch would send an authorization code in clear.",
                               status=403, code="security")
    for client in settings.clients:
        if client.smart_client_id and base in normalized_bases(client.fhir_servers):
            # With authentication off every stored row belongs to the client '' (no JWT names one).
            return LaunchTarget(base, client.smart_client_id, frozenset({origin(base), *client.smart_auth_origins}),
                                client.iss if settings.auth_required else "")
    if settings.smart_client_id and base in normalized_bases(settings.fhir_servers):
        return LaunchTarget(base, settings.smart_client_id, frozenset({origin(base), *settings.smart_auth_origins}))
    raise SmartLaunchError("This EHR is not configured for SMART launches of this service: its FHIR server is not "
                           "in the fhir_servers of a [[clients]] entry with a smart_client_id.",
                           status=403, code="security")


def _endpoint(settings: Settings, target: LaunchTarget, doc: dict, name: str) -> str:
    url = doc.get(name)
    if not isinstance(url, str) or not url:
        raise SmartLaunchError(f"The EHR's SMART configuration has no {name}.", status=502, code="exception")
    try:
        # Normalised before the origin check, and the normalised URL is the one used. A CR/LF (which
        # would split the redirect's Location header), a space or a non-ASCII character is refused.
        url = normalize_url(url)
    except ValueError:
        raise SmartLaunchError(f"The EHR's {name} is not a valid URL.", status=502, code="exception") from None
    parts = urlsplit(url)
    secure = parts.scheme == "https" or (parts.scheme == "http" and (settings.fhir_allow_http
                                                                      or is_loopback(parts.hostname or "")))
    if not parts.hostname or "@" in parts.netloc or parts.fragment or not secure:
        raise SmartLaunchError(f"The EHR's {name} is not an https URL.", status=502, code="security")
    if origin(url) not in target.auth_origins:
        # The code and PKCE verifier go only where the operator said this EHR's OAuth lives.
        raise SmartLaunchError(f"The EHR's {name} is on {origin(url)}, which is not allowed for this EHR "
                               "(add it to the client's smart_auth_origins).", status=502, code="security")
    return url


def _read_json(resp: requests.Response, what: str) -> Any:
    body = read_capped(resp, MAX_DOCUMENT_BYTES)
    if body is None:
        raise SmartLaunchError(f"The EHR's {what} is too large.", status=502, code="too-costly")
    try:
        return loads(body, MAX_DOCUMENT_DEPTH)
    except JsonRejected:
        raise SmartLaunchError(f"The EHR's {what} is not JSON.", status=502, code="exception") from None


class Discovery:
    """The EHRs' SMART configurations, read at most once per `ttl_s` per EHR (a failure is remembered
    for `failure_ttl_s`), one read at a time per EHR: anonymous hits on `/smart/launch` cannot make
    us flood an EHR with discovery requests. Launches are limited to `launches_per_minute` per EHR per
    process, which bounds the launch rows they leave in the database."""

    def __init__(self, settings: Settings, session: requests.Session, *, clock: Callable[[], float] = time.monotonic):
        self._settings, self._session, self._clock = settings, session, clock
        self._known: dict[str, tuple[float, tuple[str, str] | SmartLaunchError]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._launches: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def endpoints(self, target: LaunchTarget) -> tuple[str, str]:
        """(authorization endpoint, token endpoint) of `target`, from the cache when fresh."""
        with self._lock:
            lock = self._locks.setdefault(target.iss, threading.Lock())
        with lock:
            cached = self._fresh(target.iss)
            if cached is None:
                try:
                    cached = discover(self._settings, self._session, target)
                except SmartLaunchError as exc:
                    cached = exc
                self._known[target.iss] = (self._clock(), cached)
        if isinstance(cached, SmartLaunchError):
            raise cached
        return cached

    def _fresh(self, iss: str):
        entry = self._known.get(iss)
        if entry is None:
            return None
        at, value = entry
        ttl = self._settings.smart_discovery_failure_ttl_s if isinstance(value, SmartLaunchError) \
            else self._settings.smart_discovery_ttl_s
        return value if self._clock() - at < ttl else None

    def admit_launch(self, iss: str) -> None:
        """Count a launch from `iss`; SmartLaunchError (429) past `smart_launches_per_minute`."""
        now, limit = self._clock(), self._settings.smart_launches_per_minute
        with self._lock:
            recent = self._launches.setdefault(iss, deque())
            while recent and now - recent[0] >= 60:
                recent.popleft()
            if len(recent) >= limit:
                raise SmartLaunchError("Too many launches from this EHR in the last minute; try again shortly.",
                                       status=429, code="throttled")
            recent.append(now)


def _timeout(settings: Settings) -> tuple[float, float]:
    """(connect, read) seconds; the setting may arrive as a TOML array, checked to hold two numbers."""
    connect, read = settings.smart_timeout
    return float(connect), float(read)


def discover(settings: Settings, session: requests.Session, target: LaunchTarget) -> tuple[str, str]:
    """(authorization endpoint, token endpoint) from `{iss}/.well-known/smart-configuration`."""
    url = f"{target.iss}/.well-known/smart-configuration"
    try:
        resp = session.get(url, timeout=_timeout(settings), allow_redirects=False, stream=True,
                           headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        log.warning("SMART configuration unreachable", extra={"event": "smart_discovery_failed", "iss": target.iss,
                                                               "reason": type(exc).__name__})
        raise SmartLaunchError("The EHR's SMART configuration could not be reached.", status=502,
                               code="transient") from None
    with resp:
        if resp.status_code != 200:
            raise SmartLaunchError(f"The EHR's SMART configuration answered HTTP {resp.status_code}.", status=502,
                                   code="exception")
        doc = _read_json(resp, "SMART configuration")
    if not isinstance(doc, dict):
        raise SmartLaunchError("The EHR's SMART configuration is not a JSON object.", status=502, code="exception")
    methods = doc.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise SmartLaunchError("The EHR's authorization server does not support PKCE S256 (SMART App Launch 2.0).",
                               status=502, code="security")
    return _endpoint(settings, target, doc, "authorization_endpoint"), _endpoint(settings, target, doc, "token_endpoint")


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def begin(settings: Settings, discovery: Discovery, iss: Any, launch: Any, redirect_uri: str,
          now: float | None = None) -> tuple[str, PendingLaunch]:
    """Start an EHR launch: (URL to send the browser to, what the callback needs)."""
    target = target_for(settings, iss)
    if not isinstance(launch, str) or not launch or len(launch) > MAX_PARAM_CHARS or not launch.isprintable():
        raise SmartLaunchError("The launch is missing its 'launch' parameter: open the link from the card in the EHR "
                               "(a SMART link is completed by the EHR).")
    discovery.admit_launch(target.iss)
    authorize, token = discovery.endpoints(target)
    pending = PendingLaunch(state=secrets.token_urlsafe(32), iss=target.iss, client_id=target.client_id,
                            token_endpoint=token, redirect_uri=redirect_uri, code_verifier=secrets.token_urlsafe(64),
                            created_at=time.time() if now is None else now, client_iss=target.client_iss)
    query = urlencode({
        "response_type": "code", "client_id": target.client_id, "redirect_uri": redirect_uri, "launch": launch,
        "scope": settings.smart_scope, "state": pending.state, "aud": iss,
        "code_challenge": pkce_challenge(pending.code_verifier), "code_challenge_method": "S256",
    })
    log.info("SMART launch started", extra={"event": "smart_launch_started", "iss": target.iss})
    return f"{authorize}{'&' if '?' in authorize else '?'}{query}", pending


def finish(settings: Settings, session: requests.Session, pending: PendingLaunch, code: Any) -> TokenResult:
    """Exchange the code (with the PKCE verifier) for the token response; return its launch context."""
    if not isinstance(code, str) or not code or len(code) > MAX_PARAM_CHARS:
        raise SmartLaunchError("The authorization server sent no code.")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": pending.redirect_uri,
            "client_id": pending.client_id, "code_verifier": pending.code_verifier}
    try:
        resp = session.post(pending.token_endpoint, data=form, timeout=_timeout(settings),
                            allow_redirects=False, stream=True, headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        log.warning("SMART token endpoint unreachable", extra={"event": "smart_token_failed", "iss": pending.iss,
                                                                "reason": type(exc).__name__})
        raise SmartLaunchError("The EHR's token endpoint could not be reached.", status=502, code="transient") from None
    with resp:
        body = _read_json(resp, "token response")
        if resp.status_code != 200:
            error = body.get("error") if isinstance(body, dict) else None
            reason = error if isinstance(error, str) and error.isprintable() and len(error) < 100 else "an error"
            log.warning("SMART token request refused", extra={"event": "smart_token_failed", "iss": pending.iss,
                                                               "reason": f"http {resp.status_code} {reason}"})
            raise SmartLaunchError(f"The EHR's authorization server refused the code ({reason}, "
                                   f"HTTP {resp.status_code}). Open the link from the card again.",
                                   status=502, code="security")
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str) \
            or str(body.get("token_type", "")).lower() != "bearer":
        raise SmartLaunchError("The EHR's token response has no bearer access token.", status=502, code="exception")
    strings = {k: body.get(k) if isinstance(body.get(k), str) else None for k in ("appContext", "patient", "scope")}
    return TokenResult(app_context=strings["appContext"], patient=strings["patient"], scope=strings["scope"])
