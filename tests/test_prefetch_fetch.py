"""Fetching what prefetch lacks: PREFETCH-3/4/5/7, AUTHZ-3/5, the deadline, with `responses`."""
from __future__ import annotations

import json
import logging
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from cds_testing.apps import service_file
from cds_testing.fhir_factory import ascvd_prefetch, hook_request
from cds_testing.spec_rules import assert_operation_outcome
from fhir_adapters.client import FhirClient
from fhir_adapters.fetcher import HttpFetcher

BASE = "https://ehr.example.org/fhir/R4"
ANSWER_HELD_S = 10.0  # upper bound on a held answer should teardown never release it
URL = "/cds-services/ascvd-10y-risk"
TOKEN = "tok-PREFETCH-abc123"


def _with_server(body: dict, *, token: bool = True, server: str = BASE) -> dict:
    body = dict(body, fhirServer=server)
    if token:
        body["fhirAuthorization"] = {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 300,
                                     "scope": "user/Patient.read user/Observation.read", "subject": "cds"}
    return body


class FakeEhr:
    """Answers the ascvd templates from the resources of `ascvd_prefetch()`, like an EHR's FHIR server."""

    def __init__(self, mock: responses.RequestsMock, data: dict | None = None, held: threading.Event | None = None):
        self.data = data or ascvd_prefetch()
        self.held = held  # when given, every answer waits for it (a server slower than any deadline)
        self.queries: list[str] = []
        for rtype in ("Observation", "Condition", "MedicationRequest", "FamilyMemberHistory"):
            mock.add_callback(responses.GET, f"{BASE}/{rtype}", callback=self._search)
        mock.add_callback(responses.GET, f"{BASE}/Patient/p1", callback=self._patient)

    def _resources(self):
        for value in self.data.values():
            if value.get("resourceType") == "Bundle":
                yield from (e["resource"] for e in value["entry"])
            else:
                yield value

    def _search(self, request):
        self._wait()
        url = urlsplit(request.url)
        self.queries.append(request.url)
        rtype = url.path.rsplit("/", 1)[-1]
        q = parse_qs(url.query)
        assert q["patient"] == ["Patient/p1"]  # the reference is sent typed
        codes = set(q.get("code", [""])[0].split(",")) - {""}
        hits = [r for r in self._resources() if r["resourceType"] == rtype and (
            not codes or any(f"{c['system']}|{c['code']}" in codes for c in r["code"]["coding"]))]
        if "status" in q:
            hits = [r for r in hits if r.get("status") in q["status"]]
        return 200, {}, json.dumps({"resourceType": "Bundle", "type": "searchset", "total": len(hits),
                                    "entry": [{"resource": r} for r in hits]})

    def _patient(self, request):
        self._wait()
        self.queries.append(request.url)
        return 200, {}, json.dumps(self.data["patient"])

    def _wait(self):
        if self.held is not None:
            self.held.wait(ANSWER_HELD_S)


@pytest.fixture
def fhir():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def held():
    """A FHIR answer held back for the whole test (released at teardown, so no request thread outlives
    it): the server is slower than any deadline, without the test sleeping."""
    event = threading.Event()
    yield event
    event.set()


def _held_answer(held: threading.Event, body: str = "{}"):
    return lambda request: (held.wait(ANSWER_HELD_S), (200, {}, body))[1]


@pytest.fixture
def ehr_app(make_app):
    return make_app(fhir_servers=[BASE])


def _score(resp):
    assert resp.status_code == 200, resp.get_json()
    (card,) = resp.get_json()["cards"]
    return card, card["extension"]["org.cdsml.prediction"]


# ---- PREFETCH-4: fetch what is missing ---------------------------------------------------------------


def test_prefetch4_no_prefetch_everything_fetched_gives_the_same_card_as_full_prefetch(ehr_app, fhir):
    ehr = FakeEhr(fhir)
    client = ehr_app.test_client()
    fetched = _score(client.post(URL, json=_with_server(hook_request())))
    assert len(ehr.queries) == 10
    prefetched = _score(client.post(URL, json=hook_request(prefetch=ascvd_prefetch())))
    assert fetched[1]["score"] == prefetched[1]["score"]
    assert fetched[1]["features"] == prefetched[1]["features"]


def test_prefetch1_partial_prefetch_fetches_only_the_missing_keys(ehr_app, fhir):
    ehr = FakeEhr(fhir)
    prefetch = ascvd_prefetch()
    del prefetch["lipids"], prefetch["medications"]
    _score(ehr_app.test_client().post(URL, json=_with_server(hook_request(prefetch=prefetch))))
    # the two removed keys, and the four optional keys the factory never sends (enhancer results, family history,
    # glucose results, pregnancy status)
    assert len(ehr.queries) == 6
    assert {urlsplit(q).path.rsplit("/", 1)[-1] for q in ehr.queries} == {"Observation", "MedicationRequest", "FamilyMemberHistory"}


def test_authz2_the_bearer_token_is_sent_to_the_fhir_server(ehr_app, fhir):
    FakeEhr(fhir)
    ehr_app.test_client().post(URL, json=_with_server(hook_request()))
    assert all(c.request.headers["Authorization"] == f"Bearer {TOKEN}" for c in fhir.calls)


def test_authz5_no_fhir_authorization_means_unauthenticated_gets(ehr_app, fhir):
    FakeEhr(fhir)
    _score(ehr_app.test_client().post(URL, json=_with_server(hook_request(), token=False)))
    assert fhir.calls and all("Authorization" not in c.request.headers for c in fhir.calls)


def test_a_server_not_on_the_allow_list_gets_zero_requests(make_app, fhir):
    FakeEhr(fhir)
    app = make_app(fhir_servers=["https://other.example.org/fhir"])
    assert_operation_outcome(app.test_client().post(URL, json=_with_server(hook_request())), 412)
    assert len(fhir.calls) == 0


def test_req3_plain_http_server_with_a_token_gets_zero_requests(make_app, fhir):
    app = make_app(fhir_servers=["http://ehr.example.org/fhir/R4"], fhir_allow_http=False)
    assert_operation_outcome(app.test_client().post(URL, json=_with_server(hook_request(), server="http://ehr.example.org/fhir/R4")), 412)
    assert len(fhir.calls) == 0


# ---- failures follow the key's policy (PREFETCH-5, AUTHZ-3) -------------------------------------------


@pytest.mark.parametrize("status", [401, 403, 500])
def test_prefetch5_required_key_failing_on_the_server_is_412(ehr_app, fhir, status):
    fhir.get(f"{BASE}/Patient/p1", status=status)
    prefetch = ascvd_prefetch()
    del prefetch["patient"]
    issue = assert_operation_outcome(ehr_app.test_client().post(URL, json=_with_server(hook_request(prefetch=prefetch))), 412)
    assert issue["expression"] == ["prefetch.patient"] and str(status) in issue["diagnostics"]
    assert TOKEN not in json.dumps(issue)


@pytest.fixture
def omit_app(make_app):
    """The ascvd service with `smoking` and `medications` declared on_error = "omit"."""
    return make_app(services={"ascvd-10y-risk": _omit("smoking", "medications")}, fhir_servers=[BASE])


def _omit(*keys: str) -> str:
    """The ascvd service file with these prefetch keys declared on_error = "omit"."""
    lines = service_file("ascvd-10y-risk").splitlines()
    return "\n".join(line.replace('on_error = "fail"', 'on_error = "omit"') if line.startswith(tuple(f"{k} =" for k in keys))
                     else line for line in lines)


def test_omit_app_declares_what_the_tests_need(omit_app):
    (bound,) = omit_app.extensions["cds"].services["ascvd-10y-risk"]
    policies = {k: p.on_error for k, p in bound.definition.prefetch.items()}
    assert policies == {"patient": "fail", "lipids": "fail", "bp": "fail", "smoking": "omit",
                        "conditions": "fail", "medications": "omit", "enhancer_labs": "omit", "family_history": "omit",
                        "glycaemia": "omit", "pregnancy_status": "omit"}


def test_prefetch3_operation_outcome_in_prefetch_with_omit_policy_says_what_was_unavailable(omit_app):
    prefetch = ascvd_prefetch()
    prefetch["smoking"] = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
    resp = omit_app.test_client().post(URL, json=hook_request(prefetch=prefetch))
    assert resp.status_code == 200
    (card,) = resp.get_json()["cards"]
    assert "smoking" in card["detail"] and "timeout" in card["detail"]
    assert card["extension"]["org.cdsml.prediction"]["unavailable"]["smoking"].startswith("OperationOutcome")


def test_omit_key_failing_on_the_server_still_gives_the_cards_that_can_be_built(omit_app, fhir):
    fhir.get(f"{BASE}/MedicationRequest", status=503)
    prefetch = ascvd_prefetch()
    del prefetch["medications"]
    resp = omit_app.test_client().post(URL, json=_with_server(hook_request(prefetch=prefetch)))
    (card,) = resp.get_json()["cards"]
    ext = card["extension"]["org.cdsml.prediction"]
    assert "503" in ext["unavailable"]["medications"]
    # A risk card (every input present) names the unavailable data, worded as not obtained (never "not
    # recorded"), with the reason.
    assert f"medications: could not be retrieved ({ext['unavailable']['medications']})" in card["detail"]


def test_deadline_running_out_on_an_omit_key_still_gives_the_card(make_app, fhir, held):
    """When the deadline runs out and no required data is missing, the cards that can be built."""
    fhir.add_callback(responses.GET, f"{BASE}/MedicationRequest", callback=_held_answer(held))
    app = make_app(services={"ascvd-10y-risk": _omit("medications")}, fhir_servers=[BASE], deadline_s=0.3)
    prefetch = ascvd_prefetch()
    del prefetch["medications"]
    started = time.perf_counter()
    resp = app.test_client().post(URL, json=_with_server(hook_request(prefetch=prefetch)))
    assert time.perf_counter() - started < 2.0  # the 3 s answer is not waited for
    card, ext = _score(resp)
    assert "deadline" in ext["unavailable"]["medications"]


# ---- paged prefetch (PREFETCH-7) --------------------------------------------------------------------------


def _paged_lipids():
    prefetch = ascvd_prefetch(ldl=None)
    tc, hdl = (e["resource"] for e in prefetch["lipids"]["entry"])
    prefetch["lipids"] = {"resourceType": "Bundle", "type": "searchset", "total": 2, "entry": [{"resource": tc}],
                          "link": [{"relation": "next", "url": f"{BASE}/Observation?page=2"}]}
    prefetch.update(enhancer_labs=None, family_history=None, glycaemia=None, pregnancy_status=None)  # optional keys known empty: only the page is fetched
    return prefetch, hdl


def test_prefetch7_paged_prefetch_bundle_is_completed_through_its_next_link(ehr_app, fhir):
    prefetch, hdl = _paged_lipids()
    fhir.get(f"{BASE}/Observation", json={"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": hdl}]})
    _, ext = _score(ehr_app.test_client().post(URL, json=_with_server(hook_request(prefetch=prefetch))))
    assert ext["features"]["hdl"]["value"] == 50 and len(fhir.calls) == 1


def test_prefetch7_next_link_to_another_host_is_not_followed(make_app, fhir):
    prefetch, _ = _paged_lipids()
    prefetch["lipids"]["link"][0]["url"] = "https://attacker.example.com/Observation?page=2"
    app = make_app(fhir_servers=[BASE])
    issue = assert_operation_outcome(app.test_client().post(URL, json=_with_server(hook_request(prefetch=prefetch))), 412)
    assert "another server" in issue["diagnostics"] and len(fhir.calls) == 0


def test_prefetch7_paged_prefetch_without_fhir_access_is_incomplete(client):
    prefetch, _ = _paged_lipids()
    issue = assert_operation_outcome(client.post(URL, json=hook_request(prefetch=prefetch)), 412)
    assert issue["expression"] == ["prefetch.lipids"]


# ---- parallel fetching and the deadline ------------------------------------------------------------------


def test_fetch_all_runs_queries_in_parallel(fhir):
    types = ("Observation", "Condition", "MedicationRequest", "Encounter")
    # Each answer waits until all four requests are in flight at once: one after the other, the
    # barrier breaks (after 2 s) and the queries fail.
    all_in_flight = threading.Barrier(len(types), timeout=2.0)

    def answer(request):
        all_in_flight.wait()
        return 200, {}, json.dumps({"resourceType": "Bundle", "type": "searchset"})
    for rtype in types:
        fhir.add_callback(responses.GET, f"{BASE}/{rtype}", callback=answer)
    fetcher = HttpFetcher(FhirClient(BASE, token=TOKEN), deadline=time.monotonic() + 5, max_workers=6)
    started = time.perf_counter()
    results = fetcher.fetch_all({k: f"{k}?patient=p1" for k in types})
    elapsed = time.perf_counter() - started
    assert all(r.error is None for r in results.values())
    assert elapsed < 1.5


def test_deadline_expiring_mid_fetch_reports_the_late_key_and_keeps_the_others(fhir, held):
    fhir.add_callback(responses.GET, f"{BASE}/Condition", callback=lambda r: (200, {}, json.dumps(
        {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "Condition", "id": "c1"}}]})))
    fhir.add_callback(responses.GET, f"{BASE}/Observation", callback=_held_answer(held))
    fetcher = HttpFetcher(FhirClient(BASE, token=TOKEN), deadline=time.monotonic() + 0.3)
    started = time.perf_counter()
    results = fetcher.fetch_all({"conditions": "Condition?patient=p1", "labs": "Observation?patient=p1"})
    assert time.perf_counter() - started < 2.0  # the held answer is not waited for
    assert results["conditions"].error is None and len(results["conditions"].resources) == 1
    assert "deadline" in results["labs"].error


def test_prefetch7_completing_a_page_is_bounded_by_the_deadline_too(fhir, held):
    fhir.add_callback(responses.GET, f"{BASE}/Observation", callback=_held_answer(held))
    fetcher = HttpFetcher(FhirClient(BASE, token=TOKEN), deadline=time.monotonic() + 0.3)
    first_page = {"resourceType": "Bundle", "type": "searchset", "link": [{"relation": "next", "url": f"{BASE}/Observation?page=2"}]}
    started = time.perf_counter()
    more, error = fetcher.complete_pages(first_page)
    assert time.perf_counter() - started < 2.0 and more == [] and "deadline" in error


def test_deadline_running_out_with_required_data_missing_is_412(make_app, fhir, held):
    FakeEhr(fhir, held=held)
    app = make_app(fhir_servers=[BASE], deadline_s=0.3)
    started = time.perf_counter()
    issue = assert_operation_outcome(app.test_client().post(URL, json=_with_server(hook_request())), 412)
    assert time.perf_counter() - started < 2.0
    assert "deadline" in issue["diagnostics"]


def test_call_log_records_fhir_call_count_and_time(ehr_app, fhir, caplog):
    FakeEhr(fhir)
    caplog.set_level(logging.INFO, logger="cds_service")
    ehr_app.test_client().post(URL, json=_with_server(hook_request()))
    (call,) = [r for r in caplog.records if getattr(r, "event", None) == "call"]
    assert call.fhir_calls == 10 and call.timings["fhir"] > 0
    assert all(TOKEN not in r.getMessage() + repr(vars(r)) for r in caplog.records)
