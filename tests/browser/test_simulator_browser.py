"""The EHR simulator, explanation and analytics pages in headless Chromium against gunicorn.

Every request the page sends to the CDS endpoints is signed with the simulator's demo key and verified
by the service (SEC-2..8, config/demo.toml); feedback goes to the real feedback endpoint (FEEDBACK-2)
and is checked in the database. Screenshots land in tests/artifacts/browser/.
"""
from __future__ import annotations

import json
import sqlite3

import pytest
import requests

from .conftest import shot

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

# demo-19: a 75-year-old woman, smoker, no statin → high 10-year ASCVD risk with a statin suggestion.
ASCVD_PATIENT = "demo-19"
# demo-01: a 10-year PCE risk of 29 % decides her card (the PCE group), so her explanation page headlines it; demo-19's
# LDL-C >= 190 decides without the risk, and her page shows the PCE only as context (tests/test_ui_explain.py).
PCE_PATIENT = "demo-01"
# demo-29: CKD with eGFR < 30 (CKD-EPI 2021 from her creatinine).
RENAL_PATIENT = "demo-29"
# demo-02: an inpatient NSTEMI ready for discharge → the trained WHAS500 model (an artifact with a model card).
MI_PATIENT = "demo-02"
# demo-26: diabetes with HbA1c, urine albumin/creatinine and lipid profile due → one care-gaps card, three orders.
CARE_GAPS_PATIENT = "demo-26"
# config/demo.toml's published operator password for /analytics (login `operator`).
DEMO_ANALYTICS_TOKEN = "demo-analytics-not-a-secret"


def _rows(database, sql, *args):
    with sqlite3.connect(database) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, args)]


def _open(page, base, patient):
    page.goto(base + "/")  # `/` redirects to the simulator
    assert page.url == base + "/simulator"
    page.click(f"#pick-{patient}")
    page.wait_for_selector(f"#chart-{patient}", state="visible")


def _fire(page, hook):
    page.click(f"#fire-{hook}")
    page.wait_for_selector("#status.ok, #status.error")  # a selector, not a JS predicate: the CSP forbids eval
    status = page.inner_text("#status")
    assert "service(s) called" in status, status
    return status


def _patient_view_card(page, base, patient, service):
    _open(page, base, patient)
    _fire(page, "patient-view")
    card = page.locator(f".card[data-service-id='{service}']")
    card.wait_for()
    return card


def test_requests_are_really_signed(live):
    """SEC-2: with the demo configuration an unsigned call is refused; the simulator's JWKS is served (SEC-7)."""
    base, _ = live
    r = requests.post(f"{base}/cds-services/ascvd-10y-risk", json={}, timeout=10)
    assert r.status_code == 401
    jwks = requests.get(f"{base}/simulator/.well-known/jwks.json", timeout=10).json()
    assert jwks["keys"][0]["alg"] == "ES384" and "d" not in jwks["keys"][0]


def test_patient_view_card_accept_records_feedback(live, page):
    """Pick a patient, fire patient-view, see the card, accept its suggestion → a FEEDBACK-2 row exists."""
    base, database = live
    _open(page, base, ASCVD_PATIENT)
    shot(page, "01-simulator-patient")
    _fire(page, "patient-view")
    card = page.locator(".card[data-service-id='ascvd-10y-risk']")
    card.wait_for()
    # The demo patient set up for a high risk has LDL-C >= 190: the 2018 AHA/ACC guideline's 4.2 group.
    assert "high-intensity statin" in card.locator(".summary").inner_text()
    assert "indicator-warning" in card.get_attribute("class")
    assert card.locator(".detail strong").count() >= 1  # markdown rendered
    shot(page, "02-patient-view-cards")

    uuid = card.get_attribute("data-card-uuid")
    suggestion = card.locator("button.suggestion").first
    suggestion_uuid = suggestion.get_attribute("data-suggestion-uuid")
    suggestion.click()
    card.locator(".feedback-status.ok").wait_for()
    assert "feedback recorded" in card.locator(".feedback-status").inner_text()
    assert "atorvastatin" in page.inner_text("#orders-list")  # the create action was applied as an EHR would
    shot(page, "03-suggestion-accepted")

    rows = _rows(database, "SELECT * FROM feedback WHERE card_uuid = ?", uuid)
    assert len(rows) == 1
    assert rows[0]["outcome"] == "accepted" and rows[0]["service_id"] == "ascvd-10y-risk"
    assert json.loads(rows[0]["accepted_suggestions"]) == [suggestion_uuid]
    assert rows[0]["iss"] == f"{base}/simulator"  # stored under the client that sent it (tenant isolation)
    issued = _rows(database, "SELECT * FROM issued_cards WHERE card_uuid = ?", uuid)
    assert issued and issued[0]["model"] == "pce-goff-2013" and issued[0]["iss"] == f"{base}/simulator"


def test_accepting_one_of_several_independent_orders_keeps_the_others_available(live, page):
    """selectionBehavior "any" (CDS Hooks 2.0): the care-gap orders are independent — after one is accepted the
    others stay clickable, and accepting a second records its own feedback."""
    base, database = live
    _open(page, base, CARE_GAPS_PATIENT)
    _fire(page, "appointment-book")
    card = page.locator(".card[data-service-id='care-gaps']")
    card.wait_for()
    assert card.locator(".suggestions").get_attribute("data-selection") == "any"
    buttons = card.locator("button.suggestion")
    assert buttons.count() == 3
    labels = [buttons.nth(i).inner_text() for i in range(3)]
    assert "Order HbA1c" in labels and "Order lipid panel" in labels  # clinician names, not LOINC long names
    first, second = buttons.nth(0), buttons.nth(1)
    first.click()
    card.locator(".feedback-status.ok").wait_for()
    assert first.is_disabled() and not second.is_disabled() and not buttons.nth(2).is_disabled()
    assert "still available" in card.locator(".feedback-status").inner_text()
    shot(page, "04-care-gaps-one-of-three-accepted")
    second.click()
    card.locator("button.suggestion:disabled").nth(1).wait_for()
    assert page.locator("#orders-list li").count() == 2  # both create actions applied, as an EHR would
    uuid = card.get_attribute("data-card-uuid")
    rows = _rows(database, "SELECT * FROM feedback WHERE card_uuid = ?", uuid)
    assert [r["outcome"] for r in rows] == ["accepted", "accepted"]


def test_order_sign_risky_draft_gives_warning_and_override(live, page, browser):
    """order-sign with ibuprofen at eGFR < 30 → a warning card; override it with one of its reasons."""
    base, database = live
    _open(page, base, RENAL_PATIENT)
    page.check("#draft-ibuprofen")
    _fire(page, "order-sign")
    card = page.locator(".service-result .card.indicator-warning, .service-result .card.indicator-critical").first
    card.wait_for()
    assert "ibuprofen" in card.inner_text().lower()
    shot(page, "04-order-sign-warning")

    uuid, service = card.get_attribute("data-card-uuid"), card.get_attribute("data-service-id")
    card.locator("button.override-open").click()
    reason = card.locator(".override input[type=radio]").first
    code = reason.get_attribute("data-code")
    reason.check()
    card.locator(".override textarea").fill("benefit outweighs the risk for this patient")
    card.locator("button.override-send").click()
    card.locator(".feedback-status.ok").wait_for()
    shot(page, "05-order-sign-overridden")
    rows = _rows(database, "SELECT * FROM feedback WHERE card_uuid = ?", uuid)
    assert [(r["outcome"], r["override_code"], r["service_id"]) for r in rows] == [("overridden", code, service)]

    # Operators only: without the login the page is 401 with a Basic challenge (the browser asks for it).
    refused = requests.get(f"{base}/analytics", timeout=10)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Basic ")
    operator = browser.new_context(http_credentials={"username": "operator", "password": DEMO_ANALYTICS_TOKEN})
    try:
        analytics = operator.new_page()
        assert analytics.goto(base + "/analytics").status == 200
        table = analytics.inner_text("#report")
        assert service in table and "ascvd-10y-risk" in table and f"{base}/simulator" in table  # grouped per client
        shot(analytics, "06-analytics")
    finally:
        operator.close()


def test_explanation_page_has_chart_and_model_card(live, page):
    """The card's `absolute` link opens the explanation page: score, contributions chart, inputs, model card."""
    base, _ = live
    card = _patient_view_card(page, base, PCE_PATIENT, "ascvd-10y-risk")
    href = card.locator("a.card-link:not(.smart-link)").get_attribute("href")
    assert href.startswith(base + "/explain/")  # a capability URL: no service id or hookInstance in it
    assert card.get_attribute("data-card-uuid") and "ascvd-10y-risk" not in href
    response = page.goto(href)
    assert response.headers["cache-control"] == "no-store" and response.headers["referrer-policy"] == "no-referrer"
    assert page.locator("#contributions svg").count() == 1
    assert "%" in page.inner_text(".score")
    inputs = page.inner_text("#inputs")
    assert "Total cholesterol" in inputs and "mg/dL" in inputs
    model_card = page.inner_text("#model-card")
    assert "Goff" in model_card and "Intended population" in model_card
    shot(page, "07-explanation-equation")


def test_explanation_page_of_trained_model_has_calibration_plot(live, page):
    """For a trained artifact the model card comes from its model_card.md and the calibration plot from metrics.json."""
    base, _ = live
    _open(page, base, MI_PATIENT)
    _fire(page, "encounter-discharge")
    card = page.locator(".card[data-service-id='post-mi-mortality']")
    card.wait_for()
    page.goto(card.locator("a.card-link:not(.smart-link)").get_attribute("href"))
    assert page.locator("#contributions svg").count() == 1
    assert page.locator("#calibration svg").count() == 1
    assert "Model card" in page.inner_text("#model-card") and "AUROC" in page.inner_text("#model-card")
    shot(page, "08-explanation-artifact")


def test_smart_link_is_launched_like_an_ehr_does_and_opens_the_explanation(live, page):
    """LINK-1/LINK-2 for real: the simulator launches the card's `smart` link with iss and launch; the
    service discovers the simulator's SMART configuration, the browser goes through its authorization
    endpoint (cookies, redirects), the service exchanges the code with PKCE and reads the card's
    appContext from the token response, and the new tab shows that card's explanation."""
    base, database = live
    smart = _patient_view_card(page, base, PCE_PATIENT, "ascvd-10y-risk").locator("a.smart-link")
    token = json.loads(smart.get_attribute("data-app-context"))["explanation"]  # the card's capability token
    with page.context.expect_page() as opened:
        smart.click()
    tab = opened.value
    tab.wait_for_url(f"{base}/explain/{token}", timeout=20000)
    assert tab.locator("#contributions svg").count() == 1 and "%" in tab.inner_text(".score")
    shot(tab, "09-explanation-smart-launch")
    assert _rows(database, "SELECT * FROM smart_launches") == []  # the launch was used up
