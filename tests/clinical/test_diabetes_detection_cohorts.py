"""diabetes-detection on whole synthetic cohorts: the simulator's 30 patients and 40 carebundle adults.

For every adult without a diabetes diagnosis and not pregnant, whose record holds an HbA1c or fasting glucose
of the last 3 years: exactly one card, coherent with the latest result's ADA 2026 section 2 range; never a
model probability; never an order for a test whose last result is still inside its interval (3 years,
1 year for prediabetes). Each request is a plain FHIR R4 patient-view call with the full prefetch.
"""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cds_testing.fhir_factory import bundle, hook_request
from cds_testing.optional import require_module

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "cds_service" / "demo" / "patients"
SID = "diabetes-detection"
A1C = {"4548-4", "17856-6", "4549-2"}
FPG = {"1558-6", "14771-0"}
DIABETES = ("E08", "E09", "E10", "E11", "E13")


@pytest.fixture
def dd_client(make_app):
    """The test client of an app serving only diabetes-detection."""
    return make_app(services=[SID]).test_client()


def _resources(path: Path) -> list[dict]:
    return [e["resource"] for e in json.loads(path.read_text())["entry"]]


def _code(r: dict) -> str:
    return ((r.get("code") or {}).get("coding") or [{}])[0].get("code", "")


def _when(r: dict) -> datetime | None:
    raw = r.get("effectiveDateTime")
    return datetime.fromisoformat(raw.replace("Z", "+00:00")) if raw else None


def _expectation(resources: list[dict], now: datetime):
    """(latest glucose-test Observations of the last 3 years, in scope?) for one record."""
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    born = datetime.fromisoformat(patient["birthDate"]).replace(tzinfo=timezone.utc)
    adult = (now - born).days >= 18 * 365.25
    conditions = [r for r in resources if r["resourceType"] == "Condition"]
    diagnosed = any(_code(c).startswith(DIABETES) or _code(c) in ("73211009", "44054006", "46635009") for c in conditions)
    pregnant = any(_code(c).startswith(("Z33", "Z34", "O09")) or _code(c) == "77386006" for c in conditions)
    since = now - timedelta(days=1095)
    tests = [r for r in resources if r["resourceType"] == "Observation" and _code(r) in A1C | FPG
             and r.get("status") in ("final", "amended", "corrected") and _when(r) and since <= _when(r) <= now]
    return tests, adult and not diagnosed and not pregnant


def _check(client, resources: list[dict], label: str) -> bool:
    """Fire one patient; assert the card is coherent. Returns True when the patient was in scope."""
    now = datetime.now(timezone.utc)
    tests, in_scope = _expectation(resources, now)
    if not (tests and in_scope):
        return False
    patient = dict(next(r for r in resources if r["resourceType"] == "Patient"))
    patient.setdefault("id", "cb-" + label.split(".")[0])  # transaction Bundles may name it only by fullUrl
    observations = [r for r in resources if r["resourceType"] == "Observation"]
    prefetch = {"patient": patient, "conditions": bundle(*[r for r in resources if r["resourceType"] == "Condition"]),
                "labs": bundle(*observations), "vitals": bundle(*observations)}
    resp = client.post(f"/cds-services/{SID}", json=hook_request(prefetch=prefetch, pid=patient["id"]))
    assert resp.status_code == 200, (label, resp.data)
    cards = resp.get_json()["cards"]
    assert len(cards) == 1, (label, [c["summary"] for c in cards])
    card = cards[0]
    assert "score" not in card["extension"]["org.cdsml.prediction"], label  # guideline thresholds, no probability
    newest = max(tests, key=_when)
    value = newest["valueQuantity"]["value"]
    age_days = (now - _when(newest)).days
    ordered = {a["resource"]["code"]["coding"][0]["code"] for s in card.get("suggestions", []) for a in s["actions"]}
    latest = {}
    for t in sorted(tests, key=_when):  # the newest result of each test family wins
        latest["a1c" if _code(t) in A1C else "fpg"] = t["valueQuantity"]["value"]
    diagnostic = latest.get("a1c", 0) >= 6.5 or latest.get("fpg", 0) >= 126
    if diagnostic:
        assert card["indicator"] == "warning" and card["summary"].startswith("Possible undiagnosed diabetes"), (label, card["summary"])
    else:
        assert card["indicator"] == "info", (label, card["summary"])
        # Never a test whose last result is inside its interval.
        interval = 365 if "Prediabetes" in card["summary"] else 1095
        if age_days < interval:
            assert not ordered & (A1C | FPG), (label, card["summary"], value, age_days)
    return True


def test_simulator_patients(dd_client):
    checked = sum(_check(dd_client, _resources(p), p.name) for p in sorted(DEMO.glob("demo-*.json")))
    assert checked >= 5, f"only {checked} simulator patients had a recent HbA1c or fasting glucose"


def test_carebundle_adults(dd_client, tmp_path):
    require_module("carebundle", "the `test` extra")
    cmd = [sys.executable, "-m", "carebundle.cli", "generate", "--profile", "mixed", "--count", "40", "--seed", "7",
           "--sex", "mixed", "--age-range", "18-85", "--out", str(tmp_path / "cb")]
    subprocess.run(cmd, check=True, capture_output=True, timeout=180)
    files = sorted((tmp_path / "cb").glob("*.json"))
    assert len(files) >= 40
    checked = 0
    for f in files:
        resources = _resources(f)
        if any(r.get("resourceType") == "Patient" for r in resources):
            checked += _check(dd_client, resources, f.name)
    assert checked >= 5, f"only {checked} carebundle adults had a recent HbA1c or fasting glucose"
