"""The decision flow on the explanation page: a card decided without the service's computed scores says so
(`scoreUsed: false` in its prediction extension), and when no card of the call used a score the page shows what
decided and any score only as context, never as the patient's headline result (FDA CDS guidance, non-device
criterion 4: the basis of the recommendation, not a number that did not make it)."""
from __future__ import annotations

import re

from cds_service.ehr.contexts import build_context, now_utc
from cds_service.ehr.drafts import DRAFTS_BY_KEY
from cds_service.ehr.hook_calls import build_call
from cds_service.ehr.patients import DemoPatients, patient_from_resources
from cds_testing.order_helpers import birth_for, bundle, draft, obs

BASE = "https://cds.example.org"
EXT = "org.cdsml.prediction"
HEADLINE = re.compile(r'<p class="score">\d')


def _demo_body(app, patient: str, service: str, hook: str, drug: str | None = None) -> dict:
    bound = next(b for b in app.extensions["cds"].services[service] if b.definition.hook == hook)
    resources = DemoPatients().resources(patient)
    drafts = [DRAFTS_BY_KEY[drug]] if drug else ()
    return build_call(bound, resources, build_context(hook, patient_from_resources(resources), now=now_utc(), drafts=drafts)).body


def _pages(app, service: str, body: dict) -> tuple[list[dict], str, dict]:
    """(the call's cards, its explanation page as HTML, the same page as JSON)."""
    client = app.test_client()
    resp = client.post(f"/cds-services/{service}", json=body)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    cards = resp.get_json()["cards"]
    url = next(link["url"] for c in cards for link in c.get("links", ()) if link["type"] == "absolute").removeprefix(BASE)
    html, page = client.get(url), client.get(url + ".json")
    assert html.status_code == 200 and page.status_code == 200
    return cards, html.get_data(as_text=True), page.get_json()


def _used(card: dict):
    return card["extension"][EXT].get("scoreUsed", True)


def _score_section(html: str) -> str:
    return html.split('id="score"', 1)[1].split("</section>", 1)[0]


def _assert_decided_without_score(cards: list[dict], html: str, page: dict) -> None:
    assert all(_used(c) is False for c in cards), [c["summary"] for c in cards]
    result = _score_section(html)
    assert "What decided:</strong>" in result and not HEADLINE.search(result)
    assert page["decided_without_score"] == cards[0]["summary"] and all(r["used"] is False for r in page["results"])


def test_outside_the_population_the_page_shows_what_decided_not_a_score(app):
    """RCP 2017: NEWS2 is not validated under 16. demo-33 (11 years old) gets the does-not-apply card, decided by
    the population before any arithmetic: the page headlines that decision."""
    cards, html, page = _pages(app, "deterioration-scores", _demo_body(app, "demo-33", "deterioration-scores", "encounter-start"))
    assert "does not apply" in cards[0]["summary"]
    _assert_decided_without_score(cards, html, page)
    assert "What decided:</strong> NEWS2 does not apply" in html


def test_a_diagnostic_result_is_not_headlined_with_the_ada_risk_test(app):
    """ADA 2026 §2: HbA1c 6.8% and a 2-hour OGTT of 250 mg/dL (demo-35) are in the diabetes range; the card rests on
    them, never on a risk score. The ADA Risk Test (secondary) was computed, and the page shows it only as context."""
    cards, html, page = _pages(app, "diabetes-detection", _demo_body(app, "demo-35", "diabetes-detection", "patient-view"))
    assert "Possible undiagnosed diabetes" in cards[0]["summary"]
    _assert_decided_without_score(cards, html, page)
    ada = next(r for r in page["results"] if r["role"] == "secondary")
    assert ada["calculated"] and "Not used for this decision</strong>" in _score_section(html)


def test_ascvd_results_in_the_diabetes_range_do_not_headline_the_pce(app):
    """2018 AHA/ACC 4.3: with results in the diabetes range and no diagnosis, the diagnosis decides the statin group;
    the card shows no PCE result (it would take diabetes as absent), and neither does the page."""
    cards, html, page = _pages(app, "ascvd-10y-risk", _demo_body(app, "demo-35", "ascvd-10y-risk", "patient-view"))
    assert "diabetes range" in cards[0]["summary"]
    _assert_decided_without_score(cards, html, page)


def _renal_body(order: dict, *, age: int, weight: float, creatinine: float, conditions=()) -> dict:
    ctx = {"userId": "Practitioner/example", "patientId": "p1", "draftOrders": bundle(order, type_="collection")}
    af = {"resourceType": "Condition", "id": "af", "subject": {"reference": "Patient/p1"},
          "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
          "code": {"coding": [{"system": "http://snomed.info/sct", "code": "49436004"}]}, "onsetDateTime": "2020-01-01"}
    prefetch = {"patient": {"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": birth_for(age)},
                "creatinine": bundle(obs("cr", "2160-0", creatinine, "mg/dL", at="@ago:3d")),
                "weight": bundle(obs("wt", "29463-7", weight, "kg")),
                "conditions": bundle(af, *conditions), "medications": bundle(), "procedures": bundle()}
    return {"hook": "order-sign", "hookInstance": "6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c", "context": ctx, "prefetch": prefetch}


APIXABAN = draft("a1", "apixaban 5 MG Oral Tablet", mg=5, per_day=2)
DIALYSIS = {"resourceType": "Condition", "id": "dx", "subject": {"reference": "Patient/p1"},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "Z99.2"}]}, "onsetDateTime": "2020-01-01"}


def test_on_dialysis_egfr_and_crcl_are_context_only(app):
    """KDIGO 2024: eGFR equations do not apply on dialysis; the label's dialysis guidance decides (Z99.2). eGFR and
    CrCl were computed from the creatinine, and the page shows them as context, not as the basis."""
    cards, html, page = _pages(app, "renal-dosing", _renal_body(APIXABAN, age=70, weight=80, creatinine=6.5, conditions=[DIALYSIS]))
    assert "dialysis" in cards[0]["summary"]
    _assert_decided_without_score(cards, html, page)
    assert {r["role"] for r in page["results"] if r["calculated"]} == {"primary", "secondary"}


def test_apixaban_criteria_decide_without_egfr_but_a_crcl_drug_headlines_its_clearance(app):
    """Eliquis 2.2: the dose is reduced on two of age ≥ 80, weight ≤ 60 kg, creatinine ≥ 1.5 mg/dL — a count of
    criteria, neither eGFR nor CrCl. Xarelto 2.2 doses by CrCl: that card used a computed score, so its page
    headlines it."""
    cards, html, page = _pages(app, "renal-dosing", _renal_body(APIXABAN, age=85, weight=55, creatinine=1.2))
    assert "2 of 3 dose-reduction criteria met" in cards[0]["summary"]
    _assert_decided_without_score(cards, html, page)
    rivaroxaban = draft("r1", "rivaroxaban 20 MG Oral Tablet", mg=20, per_day=1)
    cards, html, page = _pages(app, "renal-dosing", _renal_body(rivaroxaban, age=80, weight=60, creatinine=2.0))
    assert "CrCl" in cards[0]["summary"] and _used(cards[0]) is True
    assert page["decided_without_score"] is None and HEADLINE.search(_score_section(html))


def test_af_cards_decided_by_drugs_say_so_but_the_scores_card_keeps_the_headline(app):
    """2023 ACC/AHA/ACCP/HRS 6.3.1 (no DOAC with a mechanical valve) and the antiplatelet advice after ACS/PCI hold at
    any CHA2DS2-VASc: those cards say they did not use it. The scores card beside them did, so the page still
    headlines CHA2DS2-VASc (one card resting on a score keeps it the result)."""
    for patient, kind in (("demo-31", "prosthetic heart valve"), ("demo-32", "antiplatelet")):
        cards, html, page = _pages(app, "af-anticoagulation", _demo_body(app, patient, "af-anticoagulation", "order-sign", "apixaban"))
        decided_by_drugs = [c for c in cards if kind in c["summary"]]
        scores = [c for c in cards if c["summary"].startswith(("AF anticoagulation:", "Anticoagulant at CHA2DS2-VASc"))]
        assert decided_by_drugs and scores, [c["summary"] for c in cards]
        assert all(_used(c) is False for c in decided_by_drugs) and all(_used(c) is True for c in scores)
        assert page["decided_without_score"] is None and "What decided" not in html
        assert HEADLINE.search(_score_section(html))
