"""The `Fetcher` of `cds_service/prefetch.py` over HTTP: missing prefetch keys fetched in parallel.

One `HttpFetcher` serves one invocation. `fetch_all` runs every rendered query at once on a small
thread pool (the wall time is about one round trip, not the sum) and never waits past the
invocation's deadline: a query still running then is reported as failed, and the key's `on_error`
policy decides (PREFETCH-4/5). Errors are short PHI-free strings; the token is never in them.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from typing import Callable, Mapping, Protocol

from .client import FhirClient
from .errors import FhirError, FhirTimeout

# Thread start-up and bookkeeping after the client's own deadline-capped timeouts have fired.
_GRACE_S = 0.05


class ResultCache(Protocol):
    """Where successful search results may be kept for a short time (e.g. `cds_service.fhir_access.cache`)."""

    def get(self, key: str) -> tuple[dict, ...] | None: ...

    def set(self, key: str, resources: tuple[dict, ...]) -> None: ...


@dataclass(frozen=True, slots=True)
class FetchResult:
    resources: tuple[dict, ...] = ()
    error: str | None = None  # None on success; why the key's data could not be (fully) read otherwise
    timed_out: bool = False  # the error is a timeout or the deadline (cards say "could not be retrieved (timeout)")


_DEADLINE_BEFORE_SEND = "the invocation's deadline ran out before the query was sent"
_DEADLINE_BEFORE_ANSWER = "the invocation's deadline ran out before the FHIR server answered"


class HttpFetcher:
    """Implements `cds_service.prefetch.Fetcher` with a `FhirClient` bound to the request."""

    def __init__(self, client: FhirClient, *, deadline: float | None = None, max_workers: int = 6,
                 cache: ResultCache | None = None, cache_key: Callable[[str], str] | None = None):
        self.client = client
        # Optional response cache; `cache_key(query)` binds the key to server and token.
        self.cache = cache if cache is not None and cache_key is not None else None
        self.cache_key = cache_key
        self.deadline = deadline
        self.max_workers = max(1, int(max_workers))
        self.seconds = 0.0  # wall time spent fetching (for the call log)
        self._lock = threading.Lock()

    @property
    def calls(self) -> int:
        return self.client.calls

    def close(self) -> None:
        self.client.close()

    def fetch_all(self, queries: Mapping[str, str]) -> dict[str, FetchResult]:
        """Run each rendered relative query; one result per key, in the order given."""
        if not queries:
            return {}
        started = time.perf_counter()
        try:
            left = self._left()
            if left is not None and left <= 0:
                return {k: FetchResult(error=_DEADLINE_BEFORE_SEND, timed_out=True) for k in queries}
            # Even a single query runs on the pool: waiting on its future is what bounds the call by
            # the deadline when socket timeouts cannot (a DNS lookup, a server dripping bytes).
            return self._parallel(queries)
        finally:
            self._add_time(time.perf_counter() - started)

    def complete_pages(self, bundle: Mapping) -> tuple[list[dict], str | None]:
        """Follow a prefetched Bundle's `next` links (PREFETCH-7): (more resources, error or None)."""
        started = time.perf_counter()
        try:
            left = self._left()
            if left is not None and left <= 0:
                return [], "the invocation's deadline ran out before the next page was requested"
            result = self._bounded({"pages": lambda: self._complete(bundle)})["pages"]
            return list(result.resources), result.error
        finally:
            self._add_time(time.perf_counter() - started)

    # ---- internals ----------------------------------------------------------------------------

    def _parallel(self, queries: Mapping[str, str]) -> dict[str, FetchResult]:
        return self._bounded({key: partial(self._one, query) for key, query in queries.items()})

    def _bounded(self, tasks: Mapping[str, Callable[[], FetchResult]]) -> dict[str, FetchResult]:
        """Run the tasks on a small pool; wait no longer than the deadline (plus bookkeeping grace)."""
        pool = ThreadPoolExecutor(max_workers=min(self.max_workers, len(tasks)), thread_name_prefix="fhir-fetch")
        try:
            futures = {key: pool.submit(task) for key, task in tasks.items()}
            left = self._left()
            wait(futures.values(), timeout=None if left is None else max(0.0, left) + _GRACE_S)
        finally:
            # Tasks still queued are dropped; running ones end by their deadline-capped timeouts.
            pool.shutdown(wait=False, cancel_futures=True)
        out = {}
        for key, future in futures.items():
            if future.done() and not future.cancelled():
                out[key] = future.result()  # tasks return FhirErrors as results; anything else is a bug → 500
            else:
                out[key] = FetchResult(error=_DEADLINE_BEFORE_ANSWER, timed_out=True)
        return out

    def _complete(self, bundle: Mapping) -> FetchResult:
        try:
            more, incomplete = self.client.complete(dict(bundle))
        except FhirError as exc:
            return FetchResult(error=str(exc))
        return FetchResult(tuple(more), incomplete)

    def _one(self, query: str) -> FetchResult:
        cache, cache_key = self.cache, self.cache_key
        key = cache_key(query) if cache is not None and cache_key is not None else None
        if cache is not None and key is not None:
            cached = cache.get(key)
            if cached is not None:
                return FetchResult(tuple(cached))
        try:
            result = self.client.fetch(query)
        except FhirError as exc:
            return FetchResult(error=str(exc), timed_out=isinstance(exc, FhirTimeout))
        if result.incomplete:
            # Part of the data is not data: a count, a mean or a "latest" could be wrong (PREFETCH-7).
            return FetchResult(error=result.incomplete)
        if cache is not None and key is not None:
            cache.set(key, tuple(result.resources))  # only complete, successful results
        return FetchResult(result.resources)

    def _left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def _add_time(self, seconds: float) -> None:
        with self._lock:
            self.seconds += seconds
