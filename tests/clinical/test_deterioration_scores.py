"""deterioration-scores (encounter-start): NEWS2 and qSOFA as a clinician would meet them.

Sources encoded here: Royal College of Physicians, National Early Warning Score (NEWS) 2, updated report of
a working party, December 2017 — chart 1 (the scoring system), chart 2 (thresholds and triggers), chart 3
(the observation chart: one column per set of observations), chart 4 (clinical response), and its scope
(not validated under 16 or in pregnancy); Seymour CW et al., JAMA 2016;315:762-74 and Singer M et al., JAMA
2016;315:801-10 (Sepsis-3, qSOFA); Levy MM et al., Crit Care Med 2018;46:997-1000 (hour-1 bundle).
Every request is plain FHIR R4 through the HTTP API.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest
import requests
import responses

from cds_testing.apps import build_app
from cds_testing.bedside import (
    BASE,
    ICD10,
    LOINC,
    SNOMED,
    coded,
    condition,
    encounter,
    fhir_server_body,
    news_body,
    patient,
    vital_set,
)
from cds_testing.order_helpers import EXT, obs, post, predictions, when

SERVICE = "deterioration-scores"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """Only deterioration-scores (no other service can mask a failure), reading from the test FHIR server `BASE`."""
    return build_app(tmp_path_factory.mktemp("cds"), services=[SERVICE], fhir_servers=[BASE]).test_client()


def one(client, body) -> dict:
    cards = post(client, SERVICE, body)
    assert len(cards) == 1, [c["summary"] for c in cards]
    return cards[0]


def scores(card) -> tuple[dict | None, dict | None]:
    p = predictions(card)
    return p.get("news2"), p.get("qsofa")


# ---- who NEWS2 is for: adults, not in pregnancy, inpatient or emergency care in progress --------------

def test_a_two_year_old_gets_no_adult_score_but_a_card_naming_a_paediatric_score(client):
    """Finding 4: a 2-year-old's age-normal vitals (RR 30, pulse 130, SBP 90) gave a critical "NEWS2 7"
    card. RCP NEWS2 2017 (scope): not validated under 16 — no score, a card naming a paediatric EWS."""
    card = one(client, news_body(vital_set(rr=30, pulse=130, sbp=90), patient_=patient(age=2)))
    assert card["indicator"] == "info"
    assert card["summary"].startswith("NEWS2 does not apply: patient aged 2 years")
    assert "paediatric early warning score" in card["summary"] and "PEWS" in card["detail"]
    assert scores(card) == (None, None) and "NEWS2 7" not in card["summary"]
    assert card["extension"][EXT]["applicability"]["status"] == "not-applicable"


@pytest.mark.parametrize("age, applies", [(15, False), (16, True)])
def test_age_15_is_outside_and_16_inside(client, age, applies):
    """RCP NEWS2 2017 (scope): for adults aged 16 and over. Both sides of the edge."""
    card = one(client, news_body(vital_set(), patient_=patient(age=age)))
    news, _ = scores(card)
    assert (news is not None) is applies
    assert ("does not apply" in card["summary"]) is not applies


def test_pregnancy_on_the_problem_list_names_an_obstetric_score(client):
    """RCP NEWS2 2017 (scope): not validated in pregnancy; obstetric early warning scores apply. An active
    ICD-10-CM chapter 15 Condition (O26.899, pregnancy-related condition) is a pregnancy."""
    card = one(client, news_body(vital_set(rr=25), conditions=[condition("preg", ICD10, "O26.899", onset=when("@ago:60d"))]))
    assert card["indicator"] == "info" and "does not apply in pregnancy" in card["summary"]
    assert "obstetric early warning score" in card["summary"] and scores(card) == (None, None)


def test_pregnancy_status_observation_answered_pregnant(client):
    """LOINC 82810-3 Pregnancy status = LA15173-0 Pregnant (LOINC answer list LL4129-4) → NEWS2 does not
    apply (RCP NEWS2 2017, scope)."""
    status = coded("ps", "82810-3", "Pregnant", at="@ago:20d", answer=(LOINC, "LA15173-0"))
    card = one(client, news_body(vital_set(), status))
    assert "does not apply in pregnancy" in card["summary"] and "pregnancy status: pregnant" in card["summary"]


def test_a_newer_not_pregnant_status_outweighs_an_old_pregnancy_condition(client):
    """A problem list is often not closed after delivery: a pregnancy status "Not pregnant" (LA26683-5)
    recorded after the Condition's onset means NEWS2 applies again (RCP NEWS2 2017, scope)."""
    status = coded("ps", "82810-3", "Not pregnant", at="@ago:2d", answer=(LOINC, "LA26683-5"))
    card = one(client, news_body(vital_set(), status, conditions=[condition("preg", ICD10, "Z34.90", onset=when("@ago:200d"))]))
    news, _ = scores(card)
    assert news is not None and news["score"] == 0


def test_an_open_pregnancy_episode_of_care(client):
    """An open EpisodeOfCare typed pregnancy (SNOMED CT 77386006) is a current pregnancy (RCP NEWS2 2017, scope)."""
    episode = {"resourceType": "EpisodeOfCare", "id": "ep1", "status": "active", "patient": {"reference": "Patient/p1"},
               "type": [{"coding": [{"system": SNOMED, "code": "77386006", "display": "Pregnancy"}]}],
               "period": {"start": when("@ago:90d")}}
    card = one(client, news_body(vital_set(), episodes=[episode]))
    assert "does not apply in pregnancy" in card["summary"] and "episode" in card["summary"]


@pytest.mark.parametrize("code, pregnant", [
    ("O99.89", True), ("O9A.119", True), ("Z33.1", True), ("Z34.00", True), ("Z3A.20", True),
    ("Z33.2", False), ("Z32.02", False), ("N18.6", False),
])
def test_pregnancy_code_set_edges(client, code, pregnant):
    """The pregnancy code set (hooks/deterioration-scores.toml): ICD-10-CM chapter 15 O00–O9A, Z33.1
    pregnant state, Z34.* supervision of normal pregnancy, Z3A.* weeks of gestation. Z33.2 (encounter for
    elective termination), Z32.02 (negative pregnancy test) are not a current pregnancy."""
    card = one(client, news_body(vital_set(), conditions=[condition("c", ICD10, code, onset=when("@ago:30d"))]))
    assert ("does not apply in pregnancy" in card["summary"]) is pregnant


def test_a_finished_ambulatory_encounter_gets_no_ward_advice(client):
    """Finding 4: a finished ambulatory encounter got ward-nursing advice. The RCP NEWS2 2017 responses
    (chart 4) are for inpatient and emergency care: no card at all."""
    assert post(client, SERVICE, news_body(vital_set(rr=25, sbp=88), encounter_=encounter("AMB", "finished"))) == []


@pytest.mark.parametrize("cls, scored", [("IMP", True), ("EMER", True), ("ACUTE", True), ("OBSENC", True),
                                         ("AMB", False), ("VR", False), ("HH", False)])
def test_encounter_class_inpatient_and_emergency_only(client, cls, scored):
    """v3 ActCode encounter classes: IMP, ACUTE, OBSENC, EMER are the settings of the RCP NEWS2 2017
    responses (chart 4); AMB, VR, HH are not (no card)."""
    cards = post(client, SERVICE, news_body(vital_set(), encounter_=encounter(cls)))
    assert bool(cards) is scored


@pytest.mark.parametrize("status, scored", [("in-progress", True), ("arrived", True), ("triaged", True),
                                            ("finished", False), ("planned", False), ("cancelled", False)])
def test_encounter_status_in_progress_only(client, status, scored):
    """FHIR R4 EncounterStatus: a bedside response (RCP NEWS2 2017, chart 4) is only asked while the patient
    is here (arrived, triaged, in progress)."""
    cards = post(client, SERVICE, news_body(vital_set(), encounter_=encounter("EMER", status)))
    assert bool(cards) is scored


def test_encounter_not_available_scores_but_says_the_setting_was_not_checked(client):
    """The encounter was not prefetched and there is no FHIR access: NEWS2 is scored (RCP NEWS2 2017) and the
    card says the setting could not be checked — "not available to the service", not "not recorded"."""
    card = one(client, news_body(vital_set(), omit=("encounter",)))
    assert scores(card)[0]["score"] == 0
    assert "Not checked:** an inpatient or emergency encounter" in card["detail"]
    assert "not available to the service (no prefetch and no FHIR access)" in card["detail"]


def test_age_not_available_is_not_decided_and_not_called_missing(client):
    """No Patient (not prefetched, no FHIR access): whether NEWS2 applies (age ≥ 16, RCP NEWS2 2017) cannot
    be decided — no score, and the card says the age is not available to the service."""
    card = one(client, news_body(vital_set(rr=25), omit=("patient",)))
    assert card["summary"] == "NEWS2 not scored: the patient's age is not available to the service (no prefetch and no FHIR access)"
    assert scores(card) == (None, None) and card["extension"][EXT]["applicability"]["status"] == "undecided"


# ---- one observation set taken together (RCP NEWS2 2017, chart 3) -----------------------------------

def test_the_latest_of_each_vital_from_different_times_is_not_mixed(client):
    """Finding 4: the newest value of each vital was mixed into one "set". RCP NEWS2 2017 chart 3: a score is
    one set of observations taken together. A set of 5 h ago (pulse 135: 3 points) is not mixed into the set
    of 1 h ago, which has no pulse: pulse is not assessed, and the card states the set's time."""
    old = vital_set(pulse=135, at="@ago:5h", prefix="old-")
    new = vital_set(pulse=None, at="@ago:1h", prefix="new-")
    card = one(client, news_body(old, new))
    news, _ = scores(card)
    assert "pulse" in news["not_assessed"] and news["contributions"]["pulse"] == 0
    assert "observations taken together at" in card["detail"] and "not mixed in" in card["detail"]
    assert card["extension"][EXT]["features"]["set_time"]["value"] == pytest.approx(60, abs=2)


@pytest.mark.parametrize("minutes, in_set", [(14, True), (16, False)])
def test_set_tolerance_15_minutes_before_the_newest_observation(client, minutes, in_set):
    """[OUR CHOICE] declared in the service file: a set holds what was taken up to 15 minutes before its
    newest observation (RCP NEWS2 2017, chart 3: one column per set). A temperature of 39.5 °C (2 points)
    taken 14 minutes earlier is in the set; 16 minutes earlier it is not."""
    body = news_body(vital_set(temp=None), obs("t", "8310-5", 39.5, "Cel", at=f"@ago:{1 + minutes / 60:.5f}h"))
    news, _ = scores(one(client, body))
    assert (news["contributions"]["temperature"] == 2) is in_set
    assert ("temperature" in news.get("not_assessed", [])) is not in_set


def test_a_vital_signs_panel_groups_its_members(client):
    """A vital-signs panel (LOINC 85353-1) with `hasMember` is one set: its members count even when their
    own times differ by more than the tolerance (RCP NEWS2 2017, chart 3)."""
    members = vital_set(at="@ago:1h", prefix="m-", temp=None) + [obs("m-temp", "8310-5", 39.5, "Cel", at="@ago:1.5h")]
    panel = {"resourceType": "Observation", "id": "panel", "status": "final", "code": {"coding": [{"system": LOINC, "code": "85353-1"}]},
             "effectiveDateTime": when("@ago:1h"), "subject": {"reference": "Patient/p1"},
             "hasMember": [{"reference": f"Observation/{m['id']}"} for m in members]}
    card = one(client, news_body(members, panel))
    news, _ = scores(card)
    assert news["complete"] is True and news["contributions"]["temperature"] == 2
    assert "(one panel)" in card["detail"]


# ---- consciousness is ACVPU; a GCS is not ----------------------------------------------------------------

def test_gcs_below_15_is_not_new_confusion_and_the_total_is_a_lower_bound(client):
    """Finding 4: a GCS < 15 was scored as new confusion (3 points). RCP NEWS2 2017 chart 1 scores ACVPU;
    a GCS is not ACVPU. With only a GCS of 14: consciousness not assessed, the total a lower bound, and
    the card says so. qSOFA does read GCS < 15 as altered mentation (Seymour 2016)."""
    card = one(client, news_body(vital_set(acvpu=None, gcs=14)))
    news, qsofa = scores(card)
    assert news["contributions"]["consciousness"] == 0 and "consciousness" in news["not_assessed"]
    assert card["summary"].startswith("NEWS2 ≥0") and "low clinical risk" not in card["summary"]
    assert "not assessed as ACVPU" in card["detail"] and "GCS 14" in card["detail"]
    assert qsofa["contributions"]["altered_mentation"] == 1


@pytest.mark.parametrize("answer, coding, points", [
    ("Alert", (SNOMED, "248234008"), 0), ("New confusion", None, 3), ("Responds to voice", (SNOMED, "300202002"), 3),
    ("Responds to pain", (SNOMED, "450847001"), 3), ("Unresponsive", (SNOMED, "422768004"), 3),
])
def test_acvpu_answers(client, answer, coding, points):
    """RCP NEWS2 2017 chart 1: ACVPU — Alert 0; new Confusion, Voice, Pain or Unresponsive 3 (a single 3:
    urgent ward-based response, chart 2). SNOMED CT answer codes or the answer's words."""
    card = one(client, news_body(vital_set(acvpu=None), coded("acvpu", "67775-7", answer, answer=coding)))
    news, _ = scores(card)
    assert news["contributions"]["consciousness"] == points and news["complete"] is True
    assert card["indicator"] == ("warning" if points else "info")


def test_missing_consciousness_is_never_low_risk(client):
    """Finding 4: "NEWS2 ≥ 0: low clinical risk" with consciousness missing, an item that alone scores 3
    (RCP NEWS2 2017 chart 1). The band is not known: a warning asking for the set to be completed."""
    card = one(client, news_body(vital_set(acvpu=None)))
    assert card["indicator"] == "warning" and "low clinical risk" not in card["summary"]
    assert card["summary"].startswith("NEWS2 ≥0, incomplete set (consciousness not assessed): risk band not known")
    assert "lower bound" in card["detail"] and "Ward-based response" not in card["detail"]


def test_an_incomplete_set_already_in_the_high_band_stays_critical(client):
    """A lower bound of 7 is already high (RCP NEWS2 2017 chart 2): critical, emergency response, with ≥."""
    card = one(client, news_body(vital_set(rr=26, spo2=90, pulse=135, temp=None)))
    news, _ = scores(card)
    assert news["score"] == 9 and card["indicator"] == "critical" and card["summary"].startswith("NEWS2 ≥9: high clinical risk")
    assert "Emergency response" in card["detail"]


# ---- unavailable is not absent ---------------------------------------------------------------------------

def test_unavailable_vitals_are_not_called_absent(client):
    """Finding 4: "no vital signs recorded in the last 24 hours" when the data was unavailable (no prefetch,
    no FHIR access). Unavailable is not absent (guideline wording: "not recorded" only when the data was
    available and held nothing)."""
    card = one(client, news_body(omit=("vitals",)))
    assert card["summary"] == "NEWS2 and qSOFA not calculated: vital signs not available to the service (no prefetch and no FHIR access)"
    assert "not recorded" not in card["summary"] and "known to be absent" in card["detail"]


def test_vitals_known_empty_are_not_recorded(client):
    """The EHR answered the vital-signs query with nothing: "no vital signs recorded in the last 24 hours"."""
    card = one(client, news_body())
    assert card["summary"] == "NEWS2 and qSOFA not calculated: no vital signs recorded in the last 24 hours"


def test_vitals_server_timeout_says_could_not_be_retrieved(client):
    """The FHIR server did not answer in time: "could not be retrieved (timeout)", never "not recorded"."""
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, f"{BASE}/Observation", body=requests.exceptions.ReadTimeout("slow"))
        card = one(client, fhir_server_body(news_body(), "vitals"))
    assert card["summary"] == "NEWS2 and qSOFA not calculated: vital signs could not be retrieved (timeout)"


# ---- bands and responses: RCP NEWS2 2017 chart 2 and chart 4 --------------------------------------------

@pytest.mark.parametrize("kw, total, band, indicator, response", [
    (dict(rr=21, pulse=95, temp=38.5), 4, "low", "info", "Ward-based response"),               # 2+1+1: top of low
    (dict(rr=21, pulse=95, temp=38.5, spo2=95), 5, "medium", "warning", "Urgent response"),    # bottom of medium
    (dict(rr=21, pulse=115, temp=38.5, spo2=95), 6, "medium", "warning", "Urgent response"),   # top of medium
    (dict(rr=21, pulse=115, temp=39.5, spo2=95), 7, "high", "critical", "Emergency response"),  # bottom of high
    (dict(spo2=91), 3, "low-medium", "warning", "Urgent ward-based response"),                 # a single 3
    (dict(spo2=92, pulse=95), 3, "low", "info", "Ward-based response"),                        # 3 without a single 3
])
def test_aggregate_and_single_parameter_bands(client, kw, total, band, indicator, response):
    """RCP NEWS2 2017 chart 2 (thresholds and triggers) and chart 4 (clinical response): 0–4 low → ward-based
    response; a 3 in one parameter → urgent ward-based response; 5–6 medium → urgent response; ≥ 7 high →
    emergency response. Both sides of 4/5, 6/7 and of the single 3."""
    card = one(client, news_body(vital_set(**kw)))
    news, _ = scores(card)
    assert news["score"] == total and news["complete"] is True
    assert card["indicator"] == indicator and f"{band} clinical risk" in card["detail"] and response in card["detail"]


@pytest.mark.parametrize("kw, points", [
    (dict(rr=9), 1), (dict(rr=8), 3), (dict(rr=24), 2), (dict(rr=25), 3), (dict(spo2=92), 2), (dict(spo2=91), 3),
    (dict(sbp=91), 2), (dict(sbp=90), 3), (dict(sbp=219), 0), (dict(sbp=220), 3), (dict(pulse=41), 1), (dict(pulse=40), 3),
    (dict(pulse=130), 2), (dict(pulse=131), 3), (dict(temp=35.1), 1), (dict(temp=35.0), 3),
])
def test_parameter_edges_that_change_the_response(client, kw, points):
    """RCP NEWS2 2017 chart 1 band edges where a parameter reaches 3 — the edge of the urgent ward-based
    response (chart 2). Each side of each edge: 3 → warning (single 3); below → info."""
    card = one(client, news_body(vital_set(**kw)))
    news, _ = scores(card)
    assert news["score"] == points
    assert card["indicator"] == ("warning" if points == 3 else "info")
    assert ("Urgent ward-based response" in card["detail"]) is (points == 3)


def test_supplemental_oxygen_scores_2(client):
    """RCP NEWS2 2017 chart 1: on oxygen 2 points (inhaled O2 flow 3151-8 > 0 in the set)."""
    news, _ = scores(one(client, news_body(vital_set(o2=2))))
    assert news["contributions"]["on_oxygen"] == 2


# ---- qSOFA: risk of a poor outcome in suspected infection, not a diagnosis -------------------------------

@pytest.mark.parametrize("sbp, q, positive", [(101, 1, False), (100, 2, True)])
def test_qsofa_one_and_two(client, sbp, q, positive):
    """Sepsis-3 (Seymour 2016; Singer 2016): qSOFA ≥ 2 (RR ≥ 22, SBP ≤ 100, altered mentation) flags a risk
    of a poor outcome in suspected infection; it is not a diagnostic test. qSOFA 1 says nothing of sepsis."""
    card = one(client, news_body(vital_set(rr=22, sbp=sbp)))
    _, qsofa = scores(card)
    assert qsofa["score"] == q and qsofa["positive"] is positive
    assert ("risk of a poor outcome" in card["detail"]) is positive
    assert ("not a diagnostic test for sepsis" in card["detail"]) is positive
    # NEWS2 3 or 4 (low band, info); a positive qSOFA raises the card to a warning.
    assert card["indicator"] == ("warning" if positive else "info")
    assert ("sepsis pathway" in card["detail"]) is positive


def test_critical_card_names_the_emergency_response_and_the_sepsis_pathway(client):
    """RCP NEWS2 2017 chart 4 (≥ 7: emergency response) and, with qSOFA ≥ 2, the actions of a sepsis
    pathway (Surviving Sepsis Campaign hour-1 bundle, Levy 2018: lactate, blood cultures before
    antibiotics, broad-spectrum antibiotics, 30 mL/kg crystalloid, vasopressors for MAP ≥ 65)."""
    card = one(client, news_body(vital_set(rr=24, spo2=95, o2=2, sbp=96, pulse=118, temp=39.0)))
    news, qsofa = scores(card)
    assert news["score"] == 10 and qsofa["score"] == 2
    assert card["indicator"] == "critical" and "emergency response" in card["summary"]
    detail = card["detail"]
    assert "Emergency response" in detail and "critical-care competencies" in detail
    for action in ("lactate", "blood cultures", "broad-spectrum antibiotics", "30 mL/kg", "MAP ≥ 65"):
        assert action in detail
    assert "consider sepsis" not in detail
    # The bundle's tests are one click away (Surviving Sepsis Campaign hour-1 bundle, Levy 2018), independent of each other; treatments stay text.
    assert card["selectionBehavior"] == "any"
    assert [s["label"] for s in card["suggestions"]] == ["Order lactate", "Order blood cultures"]
    from fhir.resources.R4B import get_fhir_model_class
    codes = []
    for s in card["suggestions"]:
        (action,) = s["actions"]
        get_fhir_model_class("ServiceRequest").model_validate(action["resource"])
        codes.append(action["resource"]["code"]["coding"][0]["code"])
        assert "Levy 2018" in action["resource"]["note"][0]["text"]
    assert codes == ["2524-7", "600-7"]  # LOINC lactate (mmol/L), blood culture


def test_no_sepsis_orders_without_a_positive_qsofa(client):
    """NEWS2 in the high band with qSOFA 1: the emergency response, but no sepsis bundle and no orders."""
    card = one(client, news_body(vital_set(rr=24, spo2=91, o2=2, sbp=120, pulse=118, temp=39.0)))
    news, qsofa = scores(card)
    assert news["score"] >= 7 and qsofa["score"] < 2
    assert card["indicator"] == "critical" and "suggestions" not in card


def test_invalid_vital_from_the_fhir_server_is_named_not_scored(client):
    """A vital sign the server sends as a non-finite number (JSON `Infinity`) is an invalid value: the card
    names it and the total is a lower bound (RCP NEWS2 2017 chart 1: nothing assumed normal); never a 500."""
    members = vital_set(pulse=71.125)
    body = fhir_server_body(news_body(), "vitals")
    text = json.dumps({"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": m} for m in members]})
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, f"{BASE}/Observation", body=text.replace("71.125", "Infinity"), content_type="application/fhir+json")
        card = one(client, body)
    news, _ = scores(card)
    assert "pulse" in news["not_assessed"] and card["extension"][EXT]["features"]["pulse"]["invalid"] is True
    assert "invalid value" in card["detail"] and "not a finite number" in card["detail"]


def test_another_patients_vital_signs_are_never_used(client):
    """Wrong-patient data: a newer set whose subject is another patient (an EHR or integration error) is not
    this patient's set; NEWS2 (RCP 2017, chart 3) is scored on this patient's own set only."""
    other = [dict(o, subject={"reference": "Patient/someone-else"}) for o in vital_set(rr=30, pulse=140, at="@ago:0.5h", prefix="x-")]
    card = one(client, news_body(vital_set(at="@ago:1h"), other))
    news, _ = scores(card)
    assert news["score"] == 0 and card["extension"][EXT]["features"]["set_time"]["value"] == pytest.approx(60, abs=2)


def test_vital_signs_are_shown_with_their_time(client):
    """A set of vital signs is one time, not one day (RCP NEWS2 2017, chart 3): each parameter reads "24 /min at
    14:05 UTC" (the date too when not the hook's day); laboratory values keep their date."""
    card = one(client, news_body(vital_set(rr=24, at="@ago:1h")))
    row = next(line for line in card["detail"].splitlines() if line.startswith("| Respiration rate"))
    assert re.search(r"\| 24 /min at (\d{4}-\d{2}-\d{2} )?\d{2}:\d{2} UTC \|", row), row
    stamp = card["extension"]["org.cdsml.prediction"]["features"]["resp_rate"]["date"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", stamp)


@pytest.mark.parametrize("day", ["today", "yesterday"])
def test_acvpu_and_oxygen_rows_carry_their_time_like_the_numbers(client, day):
    """RCP NEWS2 2017, chart 3: ACVPU and air/oxygen belong to the set's time as much as the numbers do. Each row
    reads "Alert at 14:05 UTC" on the hook's day and "… at 2026-11-30 23:59 UTC" on another (the same helper)."""
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    start = now.replace(hour=0, minute=0)
    taken = max(start, now - timedelta(minutes=5)) if day == "today" else start - timedelta(minutes=1)
    iso = taken.isoformat(timespec="seconds")
    card = one(client, news_body(vital_set(o2=2, at=iso)))
    shown = f"{taken:%H:%M} UTC" if taken.date() == now.date() else f"{taken:%Y-%m-%d %H:%M} UTC"
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1] for line in card["detail"].splitlines() if line.startswith("| ")}
    assert rows["Consciousness (ACVPU)"] == f"Alert at {shown}" and rows["Air or oxygen"] == f"oxygen at {shown}"
    assert rows["Respiration rate"] == f"16 /min at {shown}"
