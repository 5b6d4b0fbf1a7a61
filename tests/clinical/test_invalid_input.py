"""Non-finite and out-of-range numbers are invalid input, never a silent omission (issue 12, item 6).

In a request body (context or prefetch): 400 with an OperationOutcome naming where the number is — RFC 8259
section 6 has no NaN or Infinity, FHIR R4 JSON ("JSON representation", decimal) allows only finite decimals.
Inside FHIR data read from the EHR's server: the value is invalid, the feature says so and the card says
so (never a dropped card, never a 500).
"""
from __future__ import annotations

import json

import pytest
import responses
from order_helpers import EXT, bundle, draft, obs
from spec_rules import assert_operation_outcome

from clinical.scenarios import BASE, client_for, fhir_server_body, news_body, renal_body, vital_set


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    return client_for(tmp_path_factory, fhir_servers=[BASE])


def post_raw(client, service: str, text: str):
    return client.post(f"/cds-services/{service}", data=text, content_type="application/json")


def with_value(body: dict, marker: float, literal: str) -> str:
    """The body as JSON text with the number `marker` written as `literal` (NaN, Infinity, 1e999 …)."""
    text = json.dumps(body)
    assert text.count(repr(marker)) == 1
    return text.replace(repr(marker), literal)


# ---- in the request body: 400 + OperationOutcome --------------------------------------------------------

@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
def test_non_finite_creatinine_in_prefetch_is_a_400_naming_the_value(client, literal):
    """Finding 11: `NaN` creatinine made renal-dosing answer `{"cards": []}` for a metformin order that
    otherwise gets a critical card (FDA 2016 metformin label: eGFR < 30 contraindicated). RFC 8259 §6: not a
    JSON number; the request is refused with 400 and an OperationOutcome naming the place."""
    body = renal_body(draft("m1", "metformin 500 MG Oral Tablet", mg=500, per_day=2), creatinine=4.321)
    resp = post_raw(client, "renal-dosing", with_value(body, 4.321, literal))
    issue = assert_operation_outcome(resp, 400)
    assert issue["expression"] == ["prefetch.creatinine.entry[0].resource.valueQuantity.value"]
    assert literal in issue["diagnostics"]


def test_nan_in_a_vital_sign_is_a_400_not_a_wrong_news2(client):
    """Finding 11: NaN elsewhere gave a wrong NEWS2 (a NaN compares false with every band edge of RCP NEWS2
    2017 chart 1, so it scored 3 or 0 by accident). Refused as invalid input."""
    body = news_body(vital_set(rr=17.25))
    resp = post_raw(client, "deterioration-scores", with_value(body, 17.25, "NaN"))
    issue = assert_operation_outcome(resp, 400)
    assert issue["expression"][0].startswith("prefetch.vitals.entry[")


def test_nan_in_a_draft_order_dose_is_a_400(client):
    """A dose of NaN mg in draftOrders (CDS Hooks order-sign context) is not a dose: 400, never a skipped rule."""
    body = renal_body(draft("m1", "metformin 500 MG Oral Tablet", mg=512.5, per_day=2, dose_text="500 mg twice daily"), creatinine=4.0)
    resp = post_raw(client, "renal-dosing", with_value(body, 512.5, "NaN"))
    issue = assert_operation_outcome(resp, 400)
    assert issue["expression"][0].startswith("context.draftOrders.entry[0].resource.dosageInstruction")


def test_an_integer_beyond_a_double_is_a_400_not_a_500(client):
    """An integer of 400 digits cannot become a float (OverflowError in the unit conversion → 500 before);
    it is refused as out of range."""
    body = renal_body(draft("m1", "metformin 500 MG Oral Tablet", mg=500, per_day=2), creatinine=4.321)
    resp = post_raw(client, "renal-dosing", with_value(body, 4.321, "9" * 400))
    assert_operation_outcome(resp, 400, "prefetch.creatinine.entry[0].resource.valueQuantity.value")


def test_finite_numbers_and_exponents_are_still_accepted(client):
    """The check refuses only non-finite values: `4e0` mg/dL creatinine is a number (RFC 8259 §6 exponent)."""
    body = renal_body(draft("m1", "metformin 500 MG Oral Tablet", mg=500, per_day=2), creatinine=4.321)
    resp = post_raw(client, "renal-dosing", with_value(body, 4.321, "4e0"))
    assert resp.status_code == 200
    (card,) = resp.get_json()["cards"]
    assert card["indicator"] == "critical" and "metformin" in card["summary"].lower()
