"""The command line end to end against our service under gunicorn (2 workers, auth off, its own SQLite file):
`cds-service check` passes, `cds-service fire` prints cards, `cds-service feedback-report` counts the
feedback sent, `/metrics` sums both workers (prometheus_client multiprocess mode), and each call
leaves one JSON log line. The commands run as the installed `cds-service` script, as a user would.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import pytest
import requests

from cds_testing.fhir_factory import bp_panel, coded_obs, patient, quantity_obs
from cds_testing.servers import cds_service

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).parent / "cds-service")
HEALTHZ_CALLS = 25


def _stale_metrics_file(directory: Path) -> None:
    """A counter file left by an earlier run: gunicorn_conf.on_starting must remove it, or /metrics adds 1000."""
    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    d = MmapedDict(str(directory / "counter_99999.db"))
    d.write_value(mmap_key("cds_http_requests", "cds_http_requests_total", ["route", "method", "service", "status"],
                           ["/healthz", "GET", "", "200"], "stale"), 1000.0, 0.0)
    d.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("live")
    prom = tmp / "prom"
    prom.mkdir()
    _stale_metrics_file(prom)
    db = tmp / "cds.sqlite3"
    log = tmp / "server.log"
    env = {"CDS_AUTH_REQUIRED": "false", "CDS_DATABASE_URL": f"sqlite:///{db}", "PROMETHEUS_MULTIPROC_DIR": str(prom)}
    with cds_service(env, workers=2, log_path=log) as base:
        yield {"base": base, "db": db, "log": log, "prom": prom, "tmp": tmp}


@pytest.fixture(scope="module")
def patient_file(live):
    """A Bundle with everything the ASCVD service reads, dated last month."""
    when = (date.today() - timedelta(days=30)).isoformat()
    resources = [patient("live-1", "male", "1966-05-10"), quantity_obs("tc", "2093-3", 230, "mg/dL", when, pid="live-1"),
                 quantity_obs("hdl", "2085-9", 42, "mg/dL", when, pid="live-1"), bp_panel("bp", 150, 90, when, pid="live-1"),
                 coded_obs("smk", "72166-2", "449868002", when, pid="live-1")]
    path = live["tmp"] / "patient.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}))
    return path


def _cli(*args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout)


def test_healthz_readyz_over_http(live):
    assert requests.get(f"{live['base']}/healthz", timeout=5).json() == {"status": "ok"}
    ready = requests.get(f"{live['base']}/readyz", timeout=5)
    assert ready.status_code == 200 and ready.json()["database"] is True and "pce-goff-2013" in ready.json()["models"]


def test_check_passes_against_our_service_under_gunicorn(live, patient_file):
    """Discovery, every descriptor, a call per hook (no prefetch → 412 is fine, PREFETCH-5; all null → 200;
    prefetch from a patient), every card rule, feedback: no rule fails."""
    run = _cli("check", live["base"], "--json", "--patient", str(patient_file))
    report = json.loads(run.stdout)
    assert run.returncode == 0, [r for r in report["rules"] if r["status"] == "FAIL"]
    status = {r["rule"]: r["status"] for r in report["rules"]}
    # Plain http and auth off (development). PERF-1 may warn: a worker's first call imports the FHIR
    # resource classes lazily (about 1 s measured), which the check rightly reports.
    assert {r for r, s in status.items() if s == "WARN"} <= {"GEN-1", "SEC-2", "PERF-1"}
    for rule in ("DISC-1", "DISC-4", "REQ-1", "RESP-1", "PREFETCH-5", "PREFETCH-6", "GEN-2", "CARD-1", "CARD-2",
                 "CARD-3", "SRC-1", "OVR-1", "CODING-1", "FEEDBACK-2", "REQ-2", "ERR-3"):
        assert status[rule] == "PASS", rule
    assert any(c["status"] == 412 for c in report["calls"])  # the no-prefetch probe, reported as PREFETCH-5


def test_fire_prints_the_cards_of_our_service(live, patient_file):
    run = _cli("fire", "patient-view", "--patient", str(patient_file), "--url", live["base"], "--service", "ascvd-10y-risk")
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "== ascvd-10y-risk (patient-view): HTTP 200" in out
    assert re.search(r"^\[(INFO|WARNING|CRITICAL)\] (\w+ 10-year ASCVD risk \d+\.\d% \(PCE\)|LDL-C \d+ mg/dL|Diabetes, age \d+|On a statin|Age \d+|Clinical ASCVD)", out, re.M), out
    assert "source: 2018 AHA/ACC/multisociety Guideline on the Management of Blood Cholesterol (Grundy 2019)" in out and "Systolic blood pressure" in out
    assert "**" not in out  # markdown turned into plain text


def _fire_json(live, patient_file) -> dict:
    run = _cli("fire", "patient-view", "--patient", str(patient_file), "--url", live["base"], "--service", "ascvd-10y-risk",
               "--json")
    assert run.returncode == 0, run.stderr
    [result] = json.loads(run.stdout)  # one entry per service called
    return result


def test_fire_json_and_one_call_log_line_per_call(live, patient_file):
    result = _fire_json(live, patient_file)
    assert result["status"] == 200 and result["response"]["cards"][0]["uuid"]
    lines = [json.loads(line) for line in live["log"].read_text().splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("event") == "call" and line.get("hookInstance") == result["hookInstance"]]
    assert len(mine) == 1  # one JSON line per call
    line = mine[0]
    assert line["service"] == "ascvd-10y-risk" and line["status"] == 200 and line["latency_ms"] > 0
    assert set(line["timings"]) >= {"prefetch", "features", "model", "cards"}
    text = json.dumps(line)
    assert "live-1" not in text and "1966-05-10" not in text  # no patient data


def test_feedback_report_counts_what_the_ehr_sent(live, patient_file, capsys):
    from cds_service.cli.fire import load_patient
    from cds_service.cli.main import main
    from cds_service.ehr.contexts import build_context, now_utc
    from cds_service.ehr.hook_calls import hook_request, local_prefetch

    p = load_patient(str(patient_file), fhir_server=None)
    templates = next(d for d in requests.get(f"{live['base']}/cds-services", timeout=5).json()["services"]
                     if d["id"] == "ascvd-10y-risk")["prefetch"]
    cards = []
    for _ in range(2):  # two hook firings, two cards
        context = build_context("patient-view", p, now=now_utc())
        body = hook_request("patient-view", context, prefetch=local_prefetch(templates, context, p.resources)[0])
        cards.append(requests.post(f"{live['base']}/cds-services/ascvd-10y-risk", json=body, timeout=10).json()["cards"][0])
    card_a, card_o = cards
    url = f"{live['base']}/cds-services/ascvd-10y-risk/feedback"
    ts = "2026-06-01T10:05:31Z"
    feedback = [{"card": card_a["uuid"], "outcome": "accepted", "outcomeTimestamp": ts,
                 "acceptedSuggestions": [{"id": (card_a.get("suggestions") or [{"uuid": "none"}])[0]["uuid"]}]},
                {"card": card_o["uuid"], "outcome": "overridden", "outcomeTimestamp": ts,
                 "overrideReason": {"reason": {"system": "http://terminology.hl7.org/CodeSystem/cds-hooks-override-reasons",
                                               "code": "not-applicable"}, "userComment": "Mr Live-One has no heart"}}]
    assert requests.post(url, json={"feedback": feedback}, timeout=5).status_code == 200

    run = _cli("feedback-report", "--database-url", f"sqlite:///{live['db']}", "--json")
    assert run.returncode == 0, run.stderr
    [group] = [g for g in json.loads(run.stdout)["groups"] if g["service_id"] == "ascvd-10y-risk"]
    assert group["model"] == "pce-goff-2013" and group["cards_issued"] >= 2
    assert group["accepted"] == 1 and group["overridden"] >= 1
    assert {r["code"]: r["cards"] for r in group["override_reasons"]}["not-applicable"] == 1
    assert main(["feedback-report", "--database-url", f"sqlite:///{live['db']}"]) == 0
    text = capsys.readouterr().out
    assert "ascvd-10y-risk" in text and "pce-goff-2013" in text and "not-applicable" in text
    assert "Mr Live-One" not in text and "free-text comments" in text


def test_metrics_sum_both_workers(live):
    """With PROMETHEUS_MULTIPROC_DIR, /metrics adds up every gunicorn worker's counts; the stale file is gone."""
    base = live["base"]

    def healthz_count() -> float:
        text = requests.get(f"{base}/metrics", timeout=5).text
        found = re.search(r'^cds_http_requests_total\{method="GET",route="/healthz",service="",status="200"\} (\S+)$', text, re.M)
        return float(found.group(1)) if found else 0.0

    before = healthz_count()
    assert 1 <= before < 1000  # the start-up wait's /healthz at least; the stale file's 1000 must not be there
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: requests.get(f"{base}/healthz", timeout=5).status_code, range(HEALTHZ_CALLS)))
    assert statuses == [200] * HEALTHZ_CALLS
    assert healthz_count() - before == HEALTHZ_CALLS
    assert not (live["prom"] / "counter_99999.db").exists()
    assert list(live["prom"].glob("counter_*.db"))  # values live in per-worker files
    requests.post(f"{base}/cds-services/ascvd-10y-risk", timeout=5,
                  json={"hook": "patient-view", "hookInstance": "m-1", "context": {"userId": "Practitioner/1", "patientId": "p"}})
    text = requests.get(f"{base}/metrics", timeout=5).text
    assert re.search(r'cds_http_requests_total\{method="POST",route="/cds-services/<service_id>",service="ascvd-10y-risk",'
                     r'status="412"\} [1-9]', text)
    assert 'cds_stage_duration_seconds_bucket{le="+Inf",service="ascvd-10y-risk",stage="prefetch"}' in text


def test_openapi_lists_the_running_services(live):
    doc = requests.get(f"{live['base']}/openapi.json", timeout=5).json()
    services = requests.get(f"{live['base']}/cds-services", timeout=5).json()["services"]
    for s in services:
        assert f"/cds-services/{s['id']}" in doc["paths"] and f"/cds-services/{s['id']}/feedback" in doc["paths"]
