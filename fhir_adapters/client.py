"""The one FHIR HTTP choke point (architecture habit 6): the only module that imports requests for FHIR.

A `FhirClient` is bound to one invocation: the request's `fhirServer`, its access token (AUTHZ-2:
used for this request's calls only, never logged, never in a repr or an error) and the invocation's
deadline (a value of the client's `clock`, `time.monotonic` unless a test passes another). Every call
has explicit (connect, read) timeouts, each capped by the time left before the deadline; the body is
read under the same deadline. Retries happen only for GETs answered 429/502/503/504, through urllib3's
`Retry` mounted on the adapter, and never when the wait would cross the deadline. Redirects are not
followed. Paging follows `Bundle.link[next]` only while the link, normalised first (`urls.py`: dot
segments, escapes, case), stays on the server's scheme, host, port and base path (client-py's
`_sanitize_next_link`, made strict), up to `max_pages`; the normalised URL is the one requested.
"""
from __future__ import annotations

import http.cookiejar
import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.utils import requote_uri
from urllib3.exceptions import MaxRetryError, ReadTimeoutError, ResponseError
from urllib3.util import Retry, Timeout

from . import json_limits
from .errors import (
    FhirAuthError,
    FhirConnectionError,
    FhirError,
    FhirForbiddenTarget,
    FhirHttpError,
    FhirInvalidResource,
    FhirNotFound,
    FhirOutcomeError,
    FhirTimeout,
)
from .resources import next_link, outcome_text, split_value
from .urls import normalize_url

log = logging.getLogger("fhir_adapters.client")

RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_BODY_BYTES = 32 * 1024 * 1024  # a single FHIR page larger than this is refused, not buffered
# Deepest nesting accepted in a FHIR page: a searchset Bundle of R4 resources (extensions in
# extensions, contained resources) stays far below it; the parser's recursion limit is near 1,000.
MAX_JSON_DEPTH = 100
_MIN_ATTEMPT_S = 0.02  # a retry needs at least this much time left to be worth sending
_DEFAULT_PORTS = {"http": 80, "https": 443}
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_RELATIVE_QUERY = re.compile(r"^[A-Z][A-Za-z]+(/[A-Za-z0-9\-.$_]{1,64})*(\?.*)?$")  # Type[/id[/...]][?query]


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Resources of all pages read; `incomplete` says why more pages exist but were not read."""

    resources: tuple[dict, ...]
    incomplete: str | None = None
    pages: int = 1


class _BearerAuth(requests.auth.AuthBase):
    """Adds the token at send time; its repr never shows it (AUTHZ-2)."""

    def __init__(self, token: str | None):
        self._token = token

    def __call__(self, r):
        if self._token:
            r.headers["Authorization"] = f"Bearer {self._token}"
        return r

    def __repr__(self) -> str:
        return "_BearerAuth(***)" if self._token else "_BearerAuth(None)"


class _DeadlineRetry(Retry):
    """urllib3 `Retry` that gives up instead of waiting past the invocation's deadline."""

    def __init__(self, *args: Any, deadline: float | None = None, clock: Callable[[], float] = time.monotonic,
                 **kw: Any):
        super().__init__(*args, **kw)
        self.deadline = deadline
        self.clock = clock

    def new(self, **kw: Any) -> "_DeadlineRetry":
        retry = super().new(**kw)
        retry.deadline, retry.clock = self.deadline, self.clock
        return retry

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        if self.deadline is not None and response is not None:
            try:
                wait = retry.get_retry_after(response) if self.respect_retry_after_header else None
            except Exception:  # an unparsable Retry-After: fall back to our backoff
                wait = None
            wait = retry.get_backoff_time() if wait is None else wait
            if self.clock() + wait + _MIN_ATTEMPT_S >= self.deadline:
                # Returning the last response (raise_on_status=False) beats sleeping past the deadline.
                raise MaxRetryError(_pool, url, ResponseError("deadline reached before a retry could be sent"))
        return retry


class _DeadlineTimeout(Timeout):
    """(connect, read) timeouts whose total is re-capped to the time left at every attempt.

    urllib3 clones the timeout for each attempt (retries included), so each clone recomputes it.
    """

    def __init__(self, connect: float, read: float, deadline: float | None,
                 clock: Callable[[], float] = time.monotonic):
        total = None if deadline is None else max(0.001, deadline - clock())
        super().__init__(connect=connect, read=read, total=total)
        self.deadline = deadline
        self.clock = clock

    def clone(self) -> "_DeadlineTimeout":
        return _DeadlineTimeout(self._connect, self._read, self.deadline, self.clock)  # type: ignore[arg-type]


def with_patient_references(query: str) -> str:
    """Send reference searches as `patient=Patient/<id>` (valid FHIR; some servers, Medplum among
    them, silently match nothing for a bare id). Rewrites bare `patient=` / `subject=` values."""
    path, sep, qs = query.partition("?")
    if not sep:
        return query
    params = qs.split("&")
    for i, param in enumerate(params):
        name, eq, value = param.partition("=")
        if eq and name in ("patient", "subject") and _FHIR_ID.match(value):
            params[i] = f"{name}=Patient/{value}"
    return f"{path}?{'&'.join(params)}"


class FhirClient:
    """GETs against one FHIR server for one invocation. Use as a context manager, or call `close()`.

    Raises `FhirForbiddenTarget` at construction when a bearer token would go over plain http and
    `allow_http` is false (REQ-3).
    """

    def __init__(self, base_url: str, *, token: str | None = None, timeout: tuple[float, float] = (1.0, 2.0),
                 max_pages: int = 5, deadline: float | None = None, allow_http: bool = False, retries: int = 2,
                 backoff_s: float = 0.05, pool_size: int = 6, max_depth: int = MAX_JSON_DEPTH,
                 clock: Callable[[], float] = time.monotonic):
        try:
            base = normalize_url(base_url.strip())
        except ValueError:
            raise FhirForbiddenTarget("the FHIR server is not an http(s) base URL") from None
        parts = urlsplit(base)
        scheme = parts.scheme
        if parts.query:
            raise FhirForbiddenTarget("the FHIR server is not an http(s) base URL")
        if scheme == "http" and token and not allow_http:
            raise FhirForbiddenTarget("refusing to send a bearer token over plain http")
        self.base_url = base.rstrip("/") + "/"
        self._origin = (scheme, parts.hostname, parts.port or _DEFAULT_PORTS[scheme])
        self._base_path = parts.path.rstrip("/")
        self.timeout = (float(timeout[0]), float(timeout[1]))
        self.max_pages = max(1, int(max_pages))
        self.max_depth = max_depth
        self.deadline = deadline
        self._clock = clock  # the time base of `deadline`
        self.calls = 0  # HTTP requests sent (pages included), for the call log
        self._calls_lock = threading.Lock()  # the fetcher's threads share this client
        self._session = requests.Session()
        self._session.auth = _BearerAuth(token)  # also stops requests from reading ~/.netrc credentials
        self._session.headers.update({"Accept": "application/fhir+json"})
        self._session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))  # no cookies
        retry = _DeadlineRetry(total=retries, connect=0, read=0, other=0, redirect=False, status=retries,
                               allowed_methods=frozenset({"GET"}), status_forcelist=RETRY_STATUSES,
                               backoff_factor=backoff_s, raise_on_status=False, respect_retry_after_header=True,
                               deadline=deadline, clock=clock)
        adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=max(1, pool_size))
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def __repr__(self) -> str:
        return f"FhirClient(base_url={self.base_url!r}, token=***)"

    def __enter__(self) -> "FhirClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    # ---- public API ---------------------------------------------------------------------------

    def fetch(self, query: str) -> SearchResult:
        """Run a rendered prefetch query: a read (`Patient/123`) or a search (paged). Raises FhirError."""
        if "?" in query or "/" not in query:
            return self.search(query)
        resource = self.get(query)
        if resource.get("resourceType") == "OperationOutcome":
            raise FhirOutcomeError(f"{_what(query)}: the server answered with an {outcome_text(resource)}")
        return SearchResult((resource,))

    def search(self, query: str) -> SearchResult:
        """GET a type-level search and follow its `next` links (same server only, `max_pages`)."""
        bundle = self.get(with_patient_references(query))
        resources = self._page_resources(bundle, _what(query))
        more, incomplete, pages = self._follow(bundle, pages=1, what=_what(query))
        return SearchResult(tuple(resources + more), incomplete, pages)

    def complete(self, bundle: dict) -> tuple[list[dict], str | None]:
        """Read the pages after `bundle` (a prefetched first page, PREFETCH-7): (resources, incomplete)."""
        more, incomplete, _ = self._follow(bundle, pages=1, what="prefetched Bundle")
        return more, incomplete

    def get(self, relative_or_url: str) -> dict:
        """One GET of a relative query or a same-server absolute URL; the parsed JSON object."""
        url = self._resolve(relative_or_url)
        return self._get_json(url, _what(relative_or_url))

    # ---- internals ----------------------------------------------------------------------------

    def _resolve(self, ref: str) -> str:
        path = ref.partition("?")[0]
        if _RELATIVE_QUERY.match(ref) and not {".", ".."} & set(path.split("/")):  # "Patient/.." must not climb
            ref = urljoin(self.base_url, ref)
        url = self.checked(ref)
        if url is None:
            raise FhirForbiddenTarget("refusing a URL outside the FHIR server")
        return url

    def checked(self, url: str) -> str | None:
        """The normalised `url` when it is on this server (the URL to request, exactly), else None."""
        try:
            # requests percent-encodes what a URL may not hold (the `|` of a token search) before
            # sending; doing it first makes the checked URL the one sent.
            normal = normalize_url(requote_uri(url))
        except ValueError:
            return None
        return normal if self.on_server(normal) else None

    def on_server(self, url: str) -> bool:
        """Same scheme, host, port and base path as the server (no user info): safe for the token.
        Only meaningful for a normalised URL (`checked` normalises first)."""
        p = urlsplit(url)
        scheme = p.scheme.lower()
        try:
            origin = (scheme, (p.hostname or "").lower(), p.port or _DEFAULT_PORTS.get(scheme))
        except ValueError:  # a malformed port
            return False
        if "@" in p.netloc or origin != self._origin:
            return False
        return p.path == self._base_path or p.path.startswith(self._base_path + "/")

    def _follow(self, bundle: dict, *, pages: int, what: str) -> tuple[list[dict], str | None, int]:
        out: list[dict] = []
        link = next_link(bundle)
        while link:
            url = self.checked(urljoin(self.base_url, link))  # normalised first: `/fhirA/../tenantB` is not on fhirA
            if url is None:
                # The token must not travel to another host; the result stays incomplete.
                return out, f"{what}: a next page is on another server and was not read", pages
            if pages >= self.max_pages:
                return out, f"{what}: more than {self.max_pages} pages; only the first {pages} were read", pages
            page = self._get_json(url, what)
            pages += 1
            out += self._page_resources(page, what)
            link = next_link(page)
        return out, None, pages

    def _page_resources(self, bundle: dict, what: str) -> list[dict]:
        if bundle.get("resourceType") == "OperationOutcome":
            raise FhirOutcomeError(f"{what}: the server answered with an {outcome_text(bundle)}")
        if bundle.get("resourceType") != "Bundle":
            raise FhirInvalidResource(f"{what}: expected a Bundle, got {str(bundle.get('resourceType'))[:40]}")
        resources, outcomes = split_value(bundle)
        if outcomes:  # PREFETCH-3: an error outcome inside a search result means the data is not all there
            raise FhirOutcomeError(f"{what}: the result holds an {outcome_text(outcomes[0])}")
        return resources

    def _get_json(self, url: str, what: str) -> dict:
        status, body = self._send(url, what)
        _raise_for_status(status, body, url, what)
        value = None
        try:
            # Too deep for the parser is a failed read of this page, the prefetch key's on_error policy decides
            # (412 when required), never a RecursionError (500). `NaN`, `Infinity` and `1e999` are kept as
            # Python floats: the extractors name such a value invalid (resources.read_number) instead of losing
            # the whole answer. A stricter parser that refuses them makes the key unavailable, which cards
            # also say — never a silent value.
            value = json_limits.loads(body, self.max_depth)
        except json_limits.JsonRejected as exc:
            raise FhirInvalidResource(f"{what}: the FHIR server sent unacceptable JSON ({exc.reason})", url=url,
                                      status=status) from None
        if value is None:
            raise FhirInvalidResource(f"{what}: the FHIR server sent malformed JSON", url=url, status=status)
        if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
            raise FhirInvalidResource(f"{what}: the answer is not a FHIR resource", url=url, status=status)
        return value

    def _send(self, url: str, what: str) -> tuple[int, bytes]:
        """One GET (with the adapter's retries) → (status, body). Raises FhirTimeout / FhirConnectionError.

        Our errors are raised outside the `except` blocks so they keep no `__context__`: requests'
        exceptions hold the prepared request, whose headers carry the token (AUTHZ-2).
        """
        if self.deadline is not None and self.deadline - self._clock() <= 0:
            raise FhirTimeout(f"{what}: the invocation's deadline passed before the request", url=url)
        timeout = _DeadlineTimeout(self.timeout[0], self.timeout[1], self.deadline, self._clock)
        started = time.perf_counter()
        with self._calls_lock:
            self.calls += 1
        status, body, error = None, b"", None
        try:
            # requests hands a urllib3 Timeout to the connection pool unchanged (HTTPAdapter.send); its type
            # stubs only list numbers and tuples.
            resp = self._session.get(url, timeout=timeout, allow_redirects=False, stream=True)  # type: ignore[arg-type]
            status = resp.status_code
            try:
                body = self._read_body(resp, url, what)
            finally:
                resp.close()
        except FhirError as exc:
            error = exc
        except requests.exceptions.Timeout:
            error = FhirTimeout(f"{what}: the FHIR server did not answer in time", url=url)
        except requests.exceptions.ConnectionError as exc:
            error = (FhirTimeout(f"{what}: the FHIR server did not answer in time", url=url) if _is_timeout(exc)
                     else FhirConnectionError(f"{what}: could not connect to the FHIR server", url=url))
        except requests.exceptions.RequestException as exc:
            error = FhirConnectionError(f"{what}: the request failed ({type(exc).__name__})", url=url)
        except ReadTimeoutError:  # raised by the body read, which bypasses requests' wrapping
            error = FhirTimeout(f"{what}: the FHIR server stopped sending the answer in time", url=url)
        except urllib3.exceptions.HTTPError as exc:
            error = FhirConnectionError(f"{what}: the connection failed while reading ({type(exc).__name__})", url=url)
        log.debug("fhir call", extra={"event": "fhir_call", "status": status,
                                      "latency_ms": round((time.perf_counter() - started) * 1000, 2)})
        if error is not None:
            error.__traceback__ = None
            raise error
        assert status is not None  # no error: the server answered with a status
        return status, body

    def _read_body(self, resp: requests.Response, url: str, what: str) -> bytes:
        """Read the body in chunks, stopping at the deadline or the size cap (a slow drip cannot stall us)."""
        chunks, size = [], 0
        while True:
            # read1: whatever one socket read brings, so the deadline is checked even when a server
            # drips a byte at a time (each byte inside the read timeout; iter_content would wait for 64 KiB).
            chunk = resp.raw.read1(64 * 1024, decode_content=True)
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise FhirInvalidResource(f"{what}: the answer exceeds {MAX_BODY_BYTES} bytes", url=url, status=resp.status_code)
            if self.deadline is not None and self._clock() > self.deadline:
                raise FhirTimeout(f"{what}: the invocation's deadline passed while reading the answer", url=url)
            chunks.append(chunk)
        return b"".join(chunks)


def _is_timeout(exc: BaseException) -> bool:
    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (ReadTimeoutError, requests.exceptions.Timeout)):
            return True
        if isinstance(current, MaxRetryError) and isinstance(current.reason, ReadTimeoutError):
            return True
        nxt = current.args[0] if current.args and isinstance(current.args[0], BaseException) else None
        current = nxt or current.__cause__ or current.__context__
    return False


def _raise_for_status(status: int, body: bytes, url: str, what: str) -> None:
    """HTTP status → typed error (client-py's `raise_for_status`, without the response object)."""
    if 200 <= status < 300:
        return
    detail = ""
    try:
        value = json_limits.loads(body, MAX_JSON_DEPTH) if body else None
        if isinstance(value, dict) and value.get("resourceType") == "OperationOutcome":
            detail = f" ({outcome_text(value)})"
    except json_limits.JsonRejected:
        pass
    if 300 <= status < 400:
        raise FhirHttpError(f"{what}: the FHIR server redirected (HTTP {status}); redirects are not followed", url=url, status=status)
    if status in (401, 403):
        raise FhirAuthError(f"{what}: the FHIR server refused the access token (HTTP {status})", url=url, status=status)
    if status in (404, 410):
        raise FhirNotFound(f"{what}: not found on the FHIR server (HTTP {status}){detail}", url=url, status=status)
    raise FhirHttpError(f"{what}: the FHIR server answered HTTP {status}{detail}", url=url, status=status)


def _what(query: str) -> str:
    """A PHI-free label for a query: 'Observation search', 'Patient read' (ids and values left out)."""
    if "://" in query:
        return "FHIR request"  # an absolute URL may carry ids: never quoted
    path = query.partition("?")[0]
    rtype = path.split("/")[0]
    if not rtype:
        return "request"
    return f"{rtype} read" if "/" in path else f"{rtype} search"


__all__ = ["FhirClient", "SearchResult", "with_patient_references", "FhirError", "RETRY_STATUSES"]
