"""A clinician's pass over every card: every hook of every bundled service is fired for each
of the EHR simulator's patients exactly as the simulator builds the request (`cds_service.ehr`: the hook's
context, every draft preset of the order hooks — alone, and all signed together —, and the prefetch answered
from the patient's own record), and every card is checked against what the record shows:

- no card contradicts data on file: never a statin-initiation draft for a patient with an active statin (2018
  AHA/ACC 4.4.3: adherence and intensity, not initiation); never an HbA1c order while an HbA1c is within its
  interval (ADA 2025 section 6: at least quarterly; ADA 2026 section 2: yearly with prediabetes, every 3 years
  when normal); never a risk percentage beside a glucose or HbA1c already in the diabetes range (ADA 2026
  section 2);
- no one-click delete of a drug with another indication on file: an anticoagulant with a prosthetic valve or a
  venous thromboembolism (2023 ACC/AHA/ACCP/HRS AF guideline 6.3.1), a P2Y12 inhibitor or aspirin within 12
  months of an ACS or a PCI, or with a coronary stent (same guideline, AF with ACS/PCI);
- no adult score for a child (NEWS2 is for 16 and over, RCP 2017; CHA2DS2-VASc, HAS-BLED, CKD-EPI 2021 and the
  label doses are adult) and no NEWS2 in pregnancy (RCP 2017: an obstetric early warning score);
- unavailable is not absent: the same patients with the optional prefetch keys left out (and no FHIR access)
  never read "not recorded" about data the service did not get, and every card resting on it says so; with no
  prefetch at all a service either answers 412 naming the key (what the EHR sees) or says "not available";
- one response never gives the same advice twice: no two suggestions for the same test or drug, no two cards
  with the same summary.

The expectations are derived from the FHIR resources here, independently of the services' own code sets. The
bespoke patients demo-31 to demo-35 (scripts/make_demo_patients.py) exist for the hazard paths the generated
cohort has no patient for: a mechanical valve with AF on warfarin, AF after an NSTEMI with a stent on dual
antiplatelet therapy, a child and a pregnant woman in the emergency department, and undiagnosed diabetes.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import pytest

from cds_testing.apps import build_app
from cds_testing.simulator_fire import ORDER_HOOKS, PATIENTS, Fired, fire_all

STATINS = ("atorvastatin", "fluvastatin", "lovastatin", "pitavastatin", "pravastatin", "rosuvastatin", "simvastatin")
ANTICOAGULANTS = ("warfarin", "apixaban", "rivaroxaban", "dabigatran", "edoxaban")
P2Y12 = ("clopidogrel", "prasugrel", "ticagrelor")
HBA1C = ("4548-4", "17856-6")
FASTING_GLUCOSE = ("1558-6", "14771-0")
OGTT_2H = ("1518-0",)
# "Not recorded" in all its forms: a claim that the record holds nothing.
ABSENCE = re.compile(r"\bnot recorded\b|\bnever on record\b|\bnot on record\b|\bnone (present )?on record\b"
                     r"|\bno\b[^.;|]{0,60}\b(recorded|on record)\b", re.I)
UNAVAILABLE = re.compile(r"not available|could not be (retrieved|checked)|not obtained", re.I)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return build_app(tmp_path_factory.mktemp("cds"))  # every bundled service, as the product serves them


@pytest.fixture(scope="module")
def bound(app):
    return [b for group in app.extensions["cds"].services.values() for b in group]


@pytest.fixture(scope="module")
def fired(app, bound):
    return fire_all(app.test_client(), bound, "full")


@pytest.fixture(scope="module")
def fired_required(app, bound):
    return fire_all(app.test_client(), bound, "required")


@pytest.fixture(scope="module")
def fired_none(app, bound):
    return fire_all(app.test_client(), bound, "none")


# ---- what the record shows (derived from the resources, not from the services' code sets) ---------------------

def _resources(pid: str) -> list[dict]:
    return PATIENTS.resources(pid)


def _codes(concept: dict | None) -> list[str]:
    return [c.get("code", "") for c in (concept or {}).get("coding", [])]


def _text(concept: dict | None) -> str:
    concept = concept or {}
    return " ".join([concept.get("text", "")] + [c.get("display", "") for c in concept.get("coding", [])]).lower()


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _age(pid: str) -> float:
    born = date.fromisoformat(next(r for r in _resources(pid) if r["resourceType"] == "Patient")["birthDate"])
    return (date.today() - born).days / 365.25


def _active_conditions(pid: str) -> list[dict]:
    return [r for r in _resources(pid) if r["resourceType"] == "Condition"
            and "active" in _codes(r.get("clinicalStatus"))]


def _has_condition(pid: str, *prefixes: str, within_days: float | None = None) -> bool:
    now = datetime.now(timezone.utc)
    for c in _active_conditions(pid):
        if any(code.startswith(prefixes) for code in _codes(c.get("code"))):
            onset = _when(c.get("onsetDateTime"))
            if within_days is None or (onset is not None and now - onset <= timedelta(days=within_days)):
                return True
    return False


def _active_drugs(pid: str) -> str:
    return " ".join(_text(r.get("medicationCodeableConcept")) for r in _resources(pid)
                    if r["resourceType"] == "MedicationRequest" and r.get("status") == "active")


def _latest(pid: str, codes: tuple[str, ...]) -> tuple[float, float] | None:
    """(value, days ago) of the newest final Observation of `codes`."""
    found = [(_when(r.get("effectiveDateTime")), r["valueQuantity"]["value"]) for r in _resources(pid)
             if r["resourceType"] == "Observation" and set(_codes(r.get("code"))) & set(codes)
             and "valueQuantity" in r and r.get("status") in ("final", "amended", "corrected")]
    if not found:
        return None
    when, value = max(found, key=lambda x: x[0])
    return value, (datetime.now(timezone.utc) - when).total_seconds() / 86400


def _pregnant(pid: str) -> bool:
    return _has_condition(pid, "Z33.1", "Z34", "Z3A", "O") or any(
        r["resourceType"] == "Observation" and "82810-3" in _codes(r.get("code"))
        and "LA15173-0" in _codes(r.get("valueCodeableConcept")) for r in _resources(pid))


def _recent_pci(pid: str) -> bool:
    now = datetime.now(timezone.utc)
    return any(r["resourceType"] == "Procedure" and set(_codes(r.get("code"))) & {"92920", "92924", "92928", "92933", "92937",
                                                                                  "92941", "92943"}
               and now - _when(r.get("performedDateTime")) <= timedelta(days=365) for r in _resources(pid))


# ---- reading the cards ----------------------------------------------------------------------------------------

def _actions(card: dict) -> list[dict]:
    return [a for s in card.get("suggestions", []) for a in s.get("actions", [])]


def _created_text(action: dict) -> str:
    r = action.get("resource") or {}
    return " ".join([_text(r.get("medicationCodeableConcept")), _text(r.get("code")), " ".join(_codes(r.get("code")))]).lower()


def _deleted_drug(action: dict, fired: Fired) -> str:
    """The drug of the draft a `delete` removes (the presets' ids are `draft-<key>`)."""
    return action.get("resourceId", "").rsplit("/", 1)[-1].removeprefix("draft-")


def _text_of(card: dict) -> str:
    return f"{card.get('summary', '')}\n{card.get('detail', '')}"


def _ok(fired: list[Fired]) -> list[Fired]:
    return [f for f in fired if f.status == 200]


# ---- every call is answered ---------------------------------------------------------------------------------

def test_the_simulator_has_the_patients_of_its_hazard_paths():
    """The bespoke patients exist (a hazard path with no patient would make the checks below vacuous)."""
    assert len(PATIENTS.ids) >= 35
    assert any(_has_condition(p, "Z95.2") and "warfarin" in _active_drugs(p) for p in PATIENTS.ids)
    assert any(_has_condition(p, "Z95.5") and "clopidogrel" in _active_drugs(p) for p in PATIENTS.ids)
    assert any(_age(p) < 16 for p in PATIENTS.ids) and any(_pregnant(p) for p in PATIENTS.ids)


def test_every_hook_of_every_service_answers_every_patient(fired):
    """A service that errors is a card missing when it should fire: with the simulator's full prefetch every
    call is a 200 with a valid card list."""
    assert {f.service for f in fired} >= {"ascvd-10y-risk", "renal-dosing", "af-anticoagulation", "deterioration-scores",
                                          "care-gaps", "diabetes-detection", "post-mi-mortality"}
    failed = [(f.where, f.status) for f in fired if f.status != 200]
    assert not failed, failed[:5]
    for f in fired:
        for c in f.cards:
            assert c["indicator"] in ("info", "warning", "critical") and 0 < len(c["summary"]) < 140, f.where


# ---- no card contradicts data on file ---------------------------------------------------------------------

@pytest.mark.parametrize("pid", [p for p in PATIENTS.ids if any(s in _active_drugs(p) for s in STATINS)])
def test_no_statin_initiation_for_a_patient_on_a_statin(fired, pid):
    """2018 AHA/ACC 4.4.3: a patient on a statin gets adherence, intensity and LDL-C response, never a draft
    starting a statin."""
    for f in _ok(fired):
        if f.patient != pid:
            continue
        for c in f.cards:
            drafts = [a for a in _actions(c) if a["type"] == "create" and any(s in _created_text(a) for s in STATINS)]
            assert not drafts, (f.where, c["summary"])
            assert not re.search(r"statin recommended|moderate-intensity statin if", c["summary"]), (f.where, c["summary"])


def _hba1c_in_interval(pid: str) -> str | None:
    """Why an HbA1c order would contradict the record, or None."""
    latest = _latest(pid, HBA1C)
    if latest is None:
        return None
    value, days = latest
    if days <= 92:
        return f"HbA1c {value} {days:.0f} days ago: within the shortest interval (quarterly, ADA 2025 section 6)"
    diabetes = _has_condition(pid, "E08", "E09", "E10", "E11", "E13")
    if not diabetes and value < 5.7 and days <= 3 * 365:
        return f"normal HbA1c {value} {days:.0f} days ago: every 3 years (ADA 2026 section 2)"
    if not diabetes and value < 6.5 and days <= 365:
        return f"prediabetes-range HbA1c {value} {days:.0f} days ago: yearly (ADA 2026 section 2)"
    return None


@pytest.mark.parametrize("pid", [p for p in PATIENTS.ids if _hba1c_in_interval(p)])
def test_no_hba1c_order_while_an_hba1c_is_within_its_interval(fired, pid):
    for f in _ok(fired):
        if f.patient == pid:
            for c in f.cards:
                orders = [a for a in _actions(c) if a["type"] == "create" and set(HBA1C) & set(_created_text(a).split())]
                assert not orders, (f.where, _hba1c_in_interval(pid), c["summary"])


def _diagnostic_result(pid: str) -> str | None:
    for codes, threshold, name in ((HBA1C, 6.5, "HbA1c"), (FASTING_GLUCOSE, 126, "fasting glucose"), (OGTT_2H, 200, "2-h OGTT")):
        latest = _latest(pid, codes)
        if latest and latest[0] >= threshold and latest[1] <= 3 * 365:
            return f"{name} {latest[0]}"
    return None


@pytest.mark.parametrize("pid", [p for p in PATIENTS.ids if _diagnostic_result(p)
                                 and not _has_condition(p, "E08", "E09", "E10", "E11", "E13")])
def test_no_risk_percentage_beside_a_result_in_the_diabetes_range(fired, pid):
    """ADA 2026 section 2: a result in the diabetes range is a (possible) diagnosis, not a risk: no card of the
    chart opening shows a percentage risk or carries a model score computed as if diabetes were absent, and the
    result is named as in the diabetes range."""
    view = [f for f in _ok(fired) if f.patient == pid and f.hook == "patient-view"]
    assert any("diabetes range" in _text_of(c) for f in view for c in f.cards), _diagnostic_result(pid)
    for f in view:
        for c in f.cards:
            assert not re.search(r"\d+(\.\d+)?\s?%\s*\(PCE\)|risk[^.]{0,30}\d+(\.\d+)?\s?%", c["summary"]), (f.where, c["summary"])
            assert "score" not in c.get("extension", {}).get("org.cdsml.prediction", {}), (f.where, c["summary"])


# ---- no one-click delete of a drug with another indication ---------------------------------------------------

def _anticoagulant_indication(pid: str) -> str | None:
    if _has_condition(pid, "Z95.2", "Z95.4"):
        return "prosthetic heart valve"
    if _has_condition(pid, "I26", "I82", "I80.1", "I80.2", "Z86.71"):
        return "venous thromboembolism"
    return None


def _antiplatelet_indication(pid: str) -> str | None:
    if _has_condition(pid, "I20.0", "I21", "I22", "I24", within_days=365) or _recent_pci(pid):
        return "ACS or PCI in the last 12 months"
    if _has_condition(pid, "Z95.5"):
        return "coronary stent"
    return None


@pytest.mark.parametrize("pid", [p for p in PATIENTS.ids if _anticoagulant_indication(p) or _antiplatelet_indication(p)])
def test_no_one_click_delete_of_a_drug_with_another_indication(fired, pid):
    """2023 ACC/AHA/ACCP/HRS AF guideline: an anticoagulant has indications besides AF (a mechanical valve, VTE);
    after ACS/PCI the P2Y12 inhibitor (and early on aspirin) is kept for a limited time: neither is deleted in
    one click, whatever the stroke score."""
    keep = set(ANTICOAGULANTS if _anticoagulant_indication(pid) else ()) | set(
        P2Y12 + ("aspirin",) if _antiplatelet_indication(pid) else ())
    for f in _ok(fired):
        if f.patient != pid:
            continue
        for c in f.cards:
            deleted = {_deleted_drug(a, f) for a in _actions(c) if a["type"] == "delete"}
            assert not deleted & keep, (f.where, _anticoagulant_indication(pid), _antiplatelet_indication(pid), c["summary"])


def test_every_delete_removes_a_draft_of_this_request_never_a_standing_order(fired):
    """A suggestion that cannot be undone: a `delete` (ACT-1) only ever names a draft order of the session being
    signed or selected (reversible: the clinician orders again before signing), never an active order of the
    record (a standing anticoagulant, an antiplatelet taken for years), and never outside an order hook."""
    deletes = 0
    for f in _ok(fired):
        for c in f.cards:
            for a in _actions(c):
                if a["type"] == "delete":
                    deletes += 1
                    assert f.hook in ORDER_HOOKS and a["resourceId"].startswith("MedicationRequest/draft-"), (f.where, a)
    assert deletes  # the cohort does exercise deletes


# ---- no adult score for a child, no NEWS2 in pregnancy --------------------------------------------------------

ADULT_SCORE = re.compile(r"NEWS2 (≥)?\d|qSOFA \d|CHA2DS2-VASc (≥)?\d|HAS-BLED (≥)?\d|eGFR \d|CrCl \d|ASCVD risk \d")


@pytest.mark.parametrize("pid", [p for p in PATIENTS.ids if _age(p) < 18])
def test_no_adult_score_for_a_child(fired, pid):
    """NEWS2 is validated for 16 and over (RCP 2017); CHA2DS2-VASc, HAS-BLED, CKD-EPI 2021, Cockcroft-Gault and the
    Pooled Cohort Equations are adult: a child gets no score, at most a card saying why and what to use."""
    for f in _ok(fired):
        if f.patient != pid:
            continue
        for c in f.cards:
            assert not ADULT_SCORE.search(c["summary"]), (f.where, c["summary"])
            body = c.get("extension", {}).get("org.cdsml.prediction", {})
            assert "score" not in body and "predictions" not in body, (f.where, c["summary"])
        if f.service == "deterioration-scores" and _age(pid) < 16:
            (card,) = f.cards
            assert "paediatric early warning score" in card["summary"], card["summary"]


@pytest.mark.parametrize("pid", [p for p in PATIENTS.ids if _pregnant(p)])
def test_no_news2_and_no_statin_advice_in_pregnancy(fired, pid):
    """RCP 2017: NEWS2 is not used in pregnancy (an obstetric early warning score is); 2018 AHA/ACC 4.5.2: no statin
    is started in pregnancy, and one already taken is named to be stopped; ADA 2026 sections 2 and 15: the adult
    diabetes thresholds do not apply."""
    cards = {f.service: f.cards for f in _ok(fired) if f.patient == pid and f.hook in ("encounter-start", "patient-view")}
    for service, cs in cards.items():
        for c in cs:
            assert not ADULT_SCORE.search(c["summary"]), (pid, service, c["summary"])
            assert not [a for a in _actions(c) if a["type"] == "create"], (pid, service, c["summary"])
    if "deterioration-scores" in cards and cards["deterioration-scores"]:
        assert "obstetric early warning score" in cards["deterioration-scores"][0]["summary"]
    (statin,) = cards["ascvd-10y-risk"]
    assert "pregnancy" in statin["summary"] and "4.5.2" in statin["summary"]
    if any(s in _active_drugs(pid) for s in STATINS):
        assert statin["indicator"] == "warning" and "A statin is on record" in statin["detail"]


# ---- unavailable is not absent ------------------------------------------------------------------------------

def _resting_on(bound, service_id: str, keys: tuple[str, ...]) -> dict[str, str]:
    """{feature name: label} of the features whose data comes from `keys`."""
    definition = next(b.definition for b in bound if b.definition.id == service_id)
    return {f.name: f.label.lower() for f in definition.features if set(definition.sources_of(f.name)) & set(keys)}


def test_unavailable_data_is_never_called_not_recorded(fired_required, bound):
    """With the optional prefetch keys left out and no FHIR access, no line that claims an absence
    ("not recorded", "none on record", "no … recorded") names an input whose data the service did not get, and
    every card that names such an input without a value says it was not available."""
    checked = 0
    for f in _ok(fired_required):
        if not f.unavailable:
            continue
        resting = _resting_on(bound, f.service, f.unavailable)
        for c in f.cards:
            checked += 1
            for line in _text_of(c).splitlines():
                if ABSENCE.search(line):
                    named = [label for label in resting.values() if label in line.lower()]
                    assert not named, (f.where, named, line)
            features = c.get("extension", {}).get("org.cdsml.prediction", {}).get("features", {})
            valueless = [resting[n] for n, v in features.items() if n in resting and v.get("value") is None]
            if any(label in _text_of(c).lower() for label in valueless):
                assert UNAVAILABLE.search(_text_of(c)), (f.where, valueless, c["summary"])
    assert checked > 100  # the check ran over the cohort, not over nothing


def test_with_no_prefetch_and_no_fhir_access_the_ehr_hears_why(fired_none):
    """No prefetch and no FHIR server: a service needing the data answers 412 with an OperationOutcome naming the
    key and the reason (PREFETCH-5) — never an empty list that reads as "nothing to say" —, and a card given without
    the data says it was not available, never "not recorded"."""
    assert fired_none
    for f in fired_none:
        if f.status == 412:
            (outcome,) = f.cards
            diagnostics = " ".join(i.get("diagnostics", "") for i in outcome.get("issue", []))
            assert outcome["resourceType"] == "OperationOutcome" and "no FHIR server access" in diagnostics, f.where
            continue
        assert f.status == 200, (f.where, f.status)
        for c in f.cards:
            assert UNAVAILABLE.search(_text_of(c)) and not ABSENCE.search(_text_of(c)), (f.where, c["summary"])


# ---- one response, one piece of advice once --------------------------------------------------------------------

def test_no_advice_is_given_twice_on_one_hook(fired):
    """Duplicate cards (a hazard of its own: alert fatigue, and two answers that may drift apart): for one patient
    and one hook invocation, no two cards of all the services share a summary, and no two suggestions order the
    same test or remove the same order."""
    by_call: dict[tuple, list] = {}
    for f in _ok(fired):
        by_call.setdefault((f.patient, f.hook, f.drafts), []).extend(f.cards)
    for call, cards in by_call.items():
        summaries = [c["summary"] for c in cards]
        assert len(summaries) == len(set(summaries)), (call, summaries)
        made = [(a["type"], a.get("resourceId") or _created_text(a)) for c in cards for a in _actions(c)]
        assert len(made) == len(set(made)), (call, made)


def test_a_renal_card_shows_one_value_in_its_summary_and_its_detail(fired):
    """A rounding that contradicts: the eGFR or CrCl the summary names is exactly the one the detail shows (eGFR
    44.998 on a card about 30-44 is not '45' in the detail; eGFR 24 in the summary is not 23.97 in the detail)."""
    seen = 0
    for f in _ok(fired):
        if f.service != "renal-dosing":
            continue
        for c in f.cards:
            m = re.search(r"(eGFR|CrCl) ([\d.]+)", c["summary"])
            if m:
                seen += 1
                shown = re.search(rf"{m.group(1)} \*\*([\d.]+) ", c["detail"])
                assert shown and shown.group(1) == m.group(2), (f.where, c["summary"], shown and shown.group(1))
    assert seen
