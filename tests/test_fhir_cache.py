"""The optional FHIR response cache: per server, token and query; fail open; off by default."""
from __future__ import annotations

import pytest
import responses

from cds_service.fhir_access.cache import RedisFhirCache, cache_key
from cds_testing.db_servers import redis_bin, redis_server
from cds_testing.optional import missing, require_module
from cds_testing.servers import free_port
from fhir_adapters.client import FhirClient
from fhir_adapters.fetcher import HttpFetcher

BASE = "https://fhir.example.org/r4"
BUNDLE = {"resourceType": "Bundle", "type": "searchset", "total": 1,
          "entry": [{"resource": {"resourceType": "Observation", "id": "o1", "status": "final"}}]}


class DictCache:
    def __init__(self):
        self.data = {}

    def get(self, key):
        return self.data.get(key)

    def set(self, key, resources):
        self.data[key] = resources


def _fetcher(cache, token):
    client = FhirClient(BASE, token=token, timeout=(1, 1), max_pages=2)
    return HttpFetcher(client, cache=cache, cache_key=lambda q: cache_key(BASE, token, q))


@responses.activate
def test_same_token_and_query_is_served_from_the_cache():
    responses.get(f"{BASE}/Observation", json=BUNDLE)
    cache = DictCache()
    first = _fetcher(cache, "token-a").fetch_all({"k": "Observation?patient=Patient/p1"})
    second = _fetcher(cache, "token-a").fetch_all({"k": "Observation?patient=Patient/p1"})
    assert first["k"].resources == second["k"].resources and len(responses.calls) == 1


@responses.activate
def test_another_token_never_sees_the_cached_result():
    responses.get(f"{BASE}/Observation", json=BUNDLE)
    cache = DictCache()
    _fetcher(cache, "token-a").fetch_all({"k": "Observation?patient=Patient/p1"})
    _fetcher(cache, "token-b").fetch_all({"k": "Observation?patient=Patient/p1"})
    assert len(responses.calls) == 2
    assert "token-a" not in "".join(cache.data) and "token-b" not in "".join(cache.data)  # keys hash the token


@responses.activate
def test_errors_are_not_cached():
    responses.get(f"{BASE}/Observation", status=503)
    responses.get(f"{BASE}/Observation", status=503)
    responses.get(f"{BASE}/Observation", status=503)
    responses.get(f"{BASE}/Observation", json=BUNDLE)
    cache = DictCache()
    client = FhirClient(BASE, token="t", timeout=(1, 1), max_pages=2, retries=0)
    failed = HttpFetcher(client, cache=cache, cache_key=lambda q: cache_key(BASE, "t", q)).fetch_all({"k": "Observation"})
    assert failed["k"].error and cache.data == {}


def test_cache_is_off_by_default(make_app):
    app = make_app()
    assert app.extensions["cds"].settings.fhir_cache_ttl_s == 0


def test_unreachable_redis_is_a_miss_not_an_error():
    require_module("redis", "the `redis` extra")
    cache = RedisFhirCache.from_url(f"redis://127.0.0.1:{free_port()}/0", 60, timeout_s=0.2)
    assert cache.get("k") is None
    cache.set("k", ({"resourceType": "Patient"},))  # no exception


@pytest.mark.integration
def test_real_redis_round_trip_with_expiry(tmp_path):
    require_module("redis", "the `redis` extra")
    if redis_bin() is None:
        missing("redis-server is not installed (tests/setup.d/40-postgres-redis.sh installs it)")
    with redis_server(tmp_path / "redis") as url:
        cache = RedisFhirCache.from_url(url, 60)
        key = cache_key(BASE, "token-a", "Observation?patient=Patient/p1")
        cache.set(key, (BUNDLE["entry"][0]["resource"],))
        assert cache.get(key) == (BUNDLE["entry"][0]["resource"],)
        ttl = cache._redis.ttl(key)
        assert 0 < ttl <= 60
