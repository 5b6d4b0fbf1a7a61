"""Helpers for the order-time and bedside service tests: relative dates, requests, checks."""
from __future__ import annotations

import copy
import json
import re
from datetime import date, datetime, timedelta, timezone

from cds_testing.paths import FIXTURES
from cds_testing.spec_rules import assert_no_empty_members, assert_valid_card
from models.equations.ckd_epi import egfr

ORDER_FIXTURES = FIXTURES / "orders"
EXT = "org.cdsml.prediction"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
_TOKEN = re.compile(r"^@(ago|ahead):(\d+(?:\.\d+)?)([dh])$")
_BORN = re.compile(r"^@born:(\d+)$")  # a birth date that makes the patient this many years old today


def when(token: str, now: datetime | None = None) -> str:
    """'@ago:3d' → an ISO dateTime 3 days before now (fixtures must stay inside the services' windows)."""
    m = _TOKEN.match(token)
    now = now or datetime.now(timezone.utc)
    delta = timedelta(days=float(m.group(2))) if m.group(3) == "d" else timedelta(hours=float(m.group(2)))
    return (now - delta if m.group(1) == "ago" else now + delta).isoformat(timespec="seconds")


def birth_for(age: int) -> str:
    """A birth date that makes the patient `age` today (1 January of that year)."""
    return date(datetime.now(timezone.utc).year - age, 1, 1).isoformat()


def creatinine_for_egfr(target: float, age: int, female: bool) -> float:
    """Serum creatinine (mg/dL) at which CKD-EPI 2021 gives `target` (eGFR falls as creatinine rises)."""
    lo, hi = 0.2, 20.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if egfr(mid, age, female) > target else (lo, mid)
    return (lo + hi) / 2


def materialize(obj):
    if isinstance(obj, dict):
        return {k: materialize(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [materialize(v) for v in obj]
    if isinstance(obj, str) and _TOKEN.match(obj):
        return when(obj)
    if isinstance(obj, str) and _BORN.match(obj):
        return birth_for(int(obj[6:]))
    return obj


def fixture(name: str) -> dict:
    return materialize(json.loads((ORDER_FIXTURES / name).read_text()))


# The renal-dosing service of each order hook: one id per hook (the CDS Hooks Sandbox keeps one service per id).
RENAL_DOSING = {"order-sign": "renal-dosing", "order-select": "renal-dosing-select"}


def post_renal(client, body: dict) -> list[dict]:
    """`post` to the renal-dosing service of the body's hook."""
    return post(client, RENAL_DOSING[body["hook"]], body)


def post(client, service: str, body: dict) -> list[dict]:
    """POST, check 200 and every card against the checklist (CARD-1..5, SUGG-1, ACT-1, OVR-1, GEN-2)."""
    resp = client.post(f"/cds-services/{service}", json=body)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    out = resp.get_json()
    assert_no_empty_members(out)
    for card in out["cards"]:
        assert_valid_card(card)
        assert card["overrideReasons"] and all(r["display"] for r in card["overrideReasons"])  # OVR-1
    return out["cards"]


def predictions(card: dict) -> dict[str, dict]:
    return {p["model"]: p for p in card["extension"][EXT].get("predictions", [])}


def actions(card: dict) -> list[dict]:
    return [a for s in card.get("suggestions", []) for a in s.get("actions", [])]


def obs(oid: str, code: str, value, unit: str, at: str = "@ago:2d", pid: str = "p1", system: str = "http://loinc.org") -> dict:
    return {"resourceType": "Observation", "id": oid, "status": "final", "subject": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": system, "code": code}]}, "effectiveDateTime": when(at) if at.startswith("@") else at,
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}


def draft(mid: str, text: str, *, mg=None, per_day=None, status="draft", code=None, pid="p1", dose_text=None) -> dict:
    """A draft MedicationRequest named by text (orders carry product names; code only if given)."""
    coding = [{"system": RXNORM, "code": code, "display": text}] if code else []
    concept = {"text": text, **({"coding": coding} if coding else {})}
    r = {"resourceType": "MedicationRequest", "id": mid, "status": status, "intent": "order",
         "medicationCodeableConcept": concept, "subject": {"reference": f"Patient/{pid}"}}
    if mg is not None or dose_text:
        d = {"text": dose_text or f"{mg} mg"}
        if per_day:
            d["timing"] = {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}}
        if mg is not None:
            d["doseAndRate"] = [{"doseQuantity": {"value": mg, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}]
        r["dosageInstruction"] = [d]
    return r


def bundle(*resources, type_="searchset") -> dict:
    return {"resourceType": "Bundle", "type": type_, "entry": [{"resource": copy.deepcopy(r)} for r in resources]}
