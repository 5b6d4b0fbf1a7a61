"""Non-finite and out-of-range numbers are invalid input, never a silent omission.

In a request body (context or prefetch): 400 with an OperationOutcome naming where the number is — RFC 8259
section 6 has no NaN or Infinity, FHIR R4 JSON ("JSON representation", decimal) allows only finite decimals.
Inside FHIR data read from the EHR's server: the value is invalid, the feature says so and the card says
so (never a dropped card, never a 500).
"""
from __future__ import annotations

import json

import pytest
import responses

from cds_testing.apps import build_app
from cds_testing.bedside import BASE, fhir_server_body, news_body, renal_body, vital_set
from cds_testing.order_helpers import EXT, bundle, draft, obs
from cds_testing.spec_rules import assert_operation_outcome


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """Only the two services these scenarios call, reading from the test FHIR server `BASE`."""
    return build_app(tmp_path_factory.mktemp("cds"), services=["renal-dosing", "deterioration-scores"], fhir_servers=[BASE]).test_client()


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


# ---- inside FHIR data read from the EHR's server: an invalid value, said on the card -------------------

def server_answer(mock, resources: list[dict], marker: float, literal: str) -> None:
    """The FHIR server answers Observation searches with `resources`, the number `marker` written as `literal`."""
    text = json.dumps(bundle(*resources))
    assert text.count(repr(marker)) == 1
    mock.add(responses.GET, f"{BASE}/Observation", body=text.replace(repr(marker), literal), content_type="application/fhir+json")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "1e999", "9" * 400])
def test_metformin_with_an_invalid_creatinine_from_the_server_says_renal_function_could_not_be_assessed(client, literal):
    """Finding 11: a creatinine of NaN gave `{"cards": []}` for a metformin order (fail-open; FDA 2016 metformin
    label: renal function must be known — contraindicated below eGFR 30). Read from a FHIR server the value is
    invalid: one card says renal function could not be assessed and offers the test, never silence or a 500."""
    body = fhir_server_body(renal_body(draft("m1", "metformin 500 MG Oral Tablet", mg=500, per_day=2)), "creatinine")
    with responses.RequestsMock() as mock:
        server_answer(mock, [obs("cr", "2160-0", 4.321, "mg/dL", at="@ago:5d")], 4.321, literal)
        resp = client.post("/cds-services/renal-dosing", json=body)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    (card,) = resp.get_json()["cards"]
    assert card["summary"].startswith("Renal function unknown: serum creatinine invalid") and "metformin" in card["summary"]
    assert "Renal function could not be assessed" in card["detail"] and "invalid value" in card["detail"]
    assert card["extension"][EXT]["features"]["creatinine"]["invalid"] is True
    assert [s["label"] for s in card["suggestions"]] == ["Order basic metabolic panel (creatinine)"]


def test_a_valid_older_creatinine_next_to_an_invalid_newer_one_is_used(client):
    """An invalid result is left out, not the whole series: the valid creatinine of 4 mg/dL 10 days ago still
    gives the critical metformin card (FDA 2016: eGFR < 30 contraindicated), and the card notes what was ignored."""
    body = fhir_server_body(renal_body(draft("m1", "metformin 500 MG Oral Tablet", mg=500, per_day=2)), "creatinine")
    with responses.RequestsMock() as mock:
        server_answer(mock, [obs("cr1", "2160-0", 4.321, "mg/dL", at="@ago:2d"), obs("cr2", "2160-0", 4.0, "mg/dL", at="@ago:10d")],
                      4.321, "NaN")
        (card,) = client.post("/cds-services/renal-dosing", json=body).get_json()["cards"]
    assert card["indicator"] == "critical"
    assert "not a finite number" in card["extension"][EXT]["features"]["creatinine"]["note"]


def test_an_invalid_oxygen_reading_is_not_read_as_air(client):
    """RCP NEWS2 2017 chart 1 scores air 0 / oxygen 2; air is assumed only when no oxygen is charted. An FiO2
    of NaN is charted but invalid: no default stands in for it, the parameter is not assessed."""
    members = vital_set() + [obs("fio2", "3150-0", 0.355, "1", at="@ago:1h")]
    with responses.RequestsMock() as mock:
        server_answer(mock, members, 0.355, "NaN")
        (card,) = client.post("/cds-services/deterioration-scores", json=fhir_server_body(news_body(), "vitals")).get_json()["cards"]
    oxygen = card["extension"][EXT]["features"]["on_oxygen"]
    assert oxygen.get("invalid") is True and "imputed" not in oxygen
    assert "air assumed" not in card["detail"] and card["summary"].startswith("NEWS2 ≥0, incomplete set")
