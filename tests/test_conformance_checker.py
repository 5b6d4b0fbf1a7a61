"""The rule checks behind `cds-service check` (cds_service/conformance/rules.py), on JSON alone.

The spec's own examples must pass; each break must be reported under the checklist ID it breaks.
"""
from __future__ import annotations

import copy
import json

import pytest

from cds_service.conformance import rules as cf
from cds_testing.paths import SPEC_EXAMPLES

GOOD_CARD = {
    "uuid": "c-1", "summary": "Intermediate 10-year ASCVD risk: 12.0%", "indicator": "warning",
    "detail": "**Why**: see the table.", "source": {"label": "PCE", "url": "https://doi.org/10.1161/x"},
    "selectionBehavior": "at-most-one",
    "suggestions": [{"label": "Draft a statin", "uuid": "s-1", "isRecommended": True, "actions": [
        {"type": "create", "description": "Create a draft MedicationRequest",
         "resource": {"resourceType": "MedicationRequest", "status": "draft"}}]}],
    "overrideReasons": [{"system": "http://terminology.hl7.org/CodeSystem/cds-hooks-override-reasons",
                         "code": "patient-declined", "display": "Patient declined"}],
    "links": [{"label": "Why this risk?", "url": "https://cds.example.org/explain/x", "type": "absolute"}],
}


def _example(name: str):
    return json.loads((SPEC_EXAMPLES / "spec-2.0.1" / name).read_text())


def _response(*cards, **extra) -> cf.Findings:
    return cf.check_service_response(200, "application/json", {"cards": list(cards), **extra}, where="svc")


def _levels(f: cf.Findings, rule: str) -> list[str]:
    return [x.level for x in f.items if x.rule == rule]


def _mutated(**changes) -> dict:
    card = copy.deepcopy(GOOD_CARD)
    for key, value in changes.items():
        if value is None:
            card.pop(key, None)
        else:
            card[key] = value
    return card


def test_a_conformant_card_passes_every_rule_it_exercises():
    f = _response(GOOD_CARD)
    assert f.failed_rules() == [] and not [x for x in f.items if x.level == cf.WARN]
    for rule in ("RESP-1", "GEN-2", "CARD-1", "CARD-2", "CARD-3", "CARD-4", "CARD-5", "SRC-1", "SRC-2", "SUGG-1",
                 "ACT-1", "OVR-1", "CODING-1", "LINK-1"):
        assert f.status(rule) == cf.PASS, rule


@pytest.mark.parametrize("name", ["response-cards-links-overrideReasons.json", "response-no-guidance-empty-cards.json",
                                  "response-systemActions.json"])
def test_the_specs_own_response_examples_do_not_fail(name):
    """The 2.0.1 examples (RESP-1, LINK-2 smart appContext, SYSACT-2 action without description)."""
    body = _example(name)
    f = cf.check_service_response(200, "application/json", body, where=name)
    assert f.failed_rules() == [], [x for x in f.items if x.level == cf.FAIL]


def test_the_specs_discovery_example_passes_disc_rules():
    f = cf.check_discovery(200, "application/json", _example("discovery-response.json"))
    assert f.failed_rules() == []
    assert all(f.status(r) == cf.PASS for r in ("DISC-1", "DISC-4", "DISC-5", "DISC-6", "TOKEN-1", "TOKEN-2"))


def test_card_2_summary_must_stay_under_140_characters():
    assert cf.check_service_response(200, "application/json", {"cards": [_mutated(summary="x" * 139)]},
                                     where="s").status("CARD-2") == cf.PASS
    f = _response(_mutated(summary="é" * 140))  # code points, not bytes
    assert _levels(f, "CARD-2") == ["FAIL"]
    assert "140 characters" in next(x.message for x in f.items if x.rule == "CARD-2")
    assert _response(_mutated(summary="  ")).status("CARD-2") == cf.FAIL


def test_card_3_old_indicators_are_invalid():
    assert _response(_mutated(indicator="hard-stop")).status("CARD-3") == cf.FAIL
    assert _response(_mutated(indicator="success")).status("CARD-3") == cf.FAIL


def test_card_1_required_members_and_uuid():
    assert _response(_mutated(summary=None)).status("CARD-1") == cf.FAIL
    assert _response(_mutated(indicator=None)).status("CARD-1") == cf.FAIL
    no_uuid = _response(_mutated(uuid=None))
    assert no_uuid.status("CARD-1") == cf.WARN  # OUR CHOICE: without uuid no feedback can arrive
    assert _response(_mutated(detail=["not", "markdown"])).status("CARD-1") == cf.FAIL


def test_card_4_suggestions_need_selection_behavior():
    assert _response(_mutated(selectionBehavior=None)).status("CARD-4") == cf.FAIL
    assert _response(_mutated(selectionBehavior="all")).status("CARD-4") == cf.FAIL


def test_card_5_at_most_one_allows_one_recommended_suggestion():
    two = copy.deepcopy(GOOD_CARD["suggestions"] * 2)
    assert _response(_mutated(suggestions=two)).status("CARD-5") == cf.FAIL
    assert _response(_mutated(suggestions=two, selectionBehavior="any")).status("CARD-5") == cf.SKIP


def test_card_6_raw_html_in_detail_is_a_warning():
    assert _response(_mutated(detail="Stop <b>now</b>")).status("CARD-6") == cf.WARN
    assert _response(_mutated(detail="risk < 5% and > 2%")).status("CARD-6") == cf.PASS


def test_src_1_label_and_src_2_absolute_urls():
    assert _response(_mutated(source={"url": "https://x.org"})).status("SRC-1") == cf.FAIL
    assert _response(_mutated(source={"label": "L", "url": "/about"})).status("SRC-2") == cf.FAIL
    assert _response(_mutated(source={"label": "L", "icon": "icon.png"})).status("SRC-2") == cf.FAIL
    topic = _response(_mutated(source={"label": "L", "topic": {"code": "x"}}))
    assert topic.status("CODING-1") == cf.FAIL and topic.status("OVR-1") == cf.PASS  # display optional in topic


def test_sugg_1_label_uuid_and_is_recommended():
    s = copy.deepcopy(GOOD_CARD["suggestions"])
    s[0].pop("label")
    assert _response(_mutated(suggestions=s)).status("SUGG-1") == cf.FAIL
    s = copy.deepcopy(GOOD_CARD["suggestions"])
    s[0]["isRecommended"] = "yes"
    assert _response(_mutated(suggestions=s)).status("SUGG-1") == cf.FAIL
    s = copy.deepcopy(GOOD_CARD["suggestions"])
    s[0].pop("uuid")
    assert _response(_mutated(suggestions=s)).status("SUGG-1") == cf.WARN


@pytest.mark.parametrize("action,level", [
    ({"type": "delete", "description": "d", "resourceId": "ServiceRequest/1"}, cf.PASS),
    ({"type": "delete", "description": "d", "resourceId": "ServiceRequest/1", "resource": {"resourceType": "ServiceRequest"}}, cf.WARN),
    ({"type": "delete", "description": "d"}, cf.FAIL),
    ({"type": "delete", "description": "d", "resourceId": "not a reference"}, cf.FAIL),
    ({"type": "create", "description": "d"}, cf.FAIL),
    ({"type": "update", "description": "d", "resource": "ServiceRequest/1"}, cf.FAIL),
    ({"type": "create", "resource": {"resourceType": "ServiceRequest"}}, cf.FAIL),
    ({"type": "remove", "description": "d", "resource": {"resourceType": "ServiceRequest"}}, cf.FAIL),
])
def test_act_1_action_rules(action, level):
    s = [{"label": "L", "uuid": "u", "actions": [action]}]
    assert _response(_mutated(suggestions=s, selectionBehavior="any")).status("ACT-1") == level


def test_sysact_2_description_is_optional_but_type_is_not():
    assert _response(systemActions=[{"type": "update", "resource": {"resourceType": "Task"}}]).status("SYSACT-2") == cf.PASS
    assert _response(systemActions=[{"type": "remove", "resource": {"resourceType": "Task"}}]).status("SYSACT-2") == cf.FAIL
    assert _response(systemActions=[{"type": "create"}]).status("SYSACT-2") == cf.FAIL


def test_ovr_1_and_coding_1():
    assert _response(_mutated(overrideReasons=[{"system": "s", "code": "c"}])).status("OVR-1") == cf.FAIL
    f = _response(_mutated(overrideReasons=[{"code": "c", "display": "d"}]))
    assert f.status("CODING-1") == cf.FAIL and f.status("OVR-1") == cf.PASS


@pytest.mark.parametrize("link,rule", [
    ({"label": "L", "url": "https://x.org", "type": "foo"}, "LINK-1"),
    ({"label": "L", "url": "https://x.org"}, "LINK-1"),
    ({"url": "https://x.org", "type": "absolute"}, "LINK-1"),
    ({"label": "L", "url": "x.org/page", "type": "absolute"}, "LINK-1"),
    ({"label": "L", "url": "https://x.org", "type": "absolute", "appContext": "a"}, "LINK-2"),
    ({"label": "L", "url": "https://x.org", "type": "smart", "autolaunchable": "yes"}, "LINK-3"),
])
def test_link_rules(link, rule):
    assert _response(_mutated(links=[link])).status(rule) == cf.FAIL


def test_link_2_app_context_on_a_smart_link_passes():
    link = {"label": "L", "url": "https://x.org/launch", "type": "smart", "appContext": "{\"a\":1}", "autolaunchable": False}
    f = _response(_mutated(links=[link]))
    assert f.status("LINK-1") == f.status("LINK-2") == f.status("LINK-3") == cf.PASS


def test_gen_2_names_every_null_or_empty_member_but_allows_empty_cards():
    assert cf.check_service_response(200, "application/json", {"cards": []}, where="s").status("GEN-2") == cf.PASS
    f = _response(_mutated(links=[], detail=None, extension={}), systemActions=None)
    gen2 = sorted(x.where for x in f.items if x.rule == "GEN-2")
    assert gen2 == ["svc: $.cards[0].extension", "svc: $.cards[0].links", "svc: $.systemActions"]
    assert f.status("GEN-2") == cf.FAIL
    d = cf.check_discovery(200, "application/json", {"services": []})
    assert d.status("GEN-2") == cf.PASS and d.status("DISC-2") == cf.PASS


def test_gen_4_suggests_the_spec_spelling_of_a_misspelt_member():
    card = _mutated(selectionBehavior=None)
    card["selection_behavior"] = "any"
    f = _response(card)
    warn = next(x for x in f.items if x.rule == "GEN-4")
    assert warn.level == cf.WARN and "selectionBehavior" in warn.message


def test_gen_1_content_type():
    f = cf.check_service_response(200, "text/html; charset=utf-8", {"cards": []}, where="s")
    assert f.status("GEN-1") == cf.FAIL
    f = cf.Findings()
    cf.check_transport("http://127.0.0.1:8080", f)
    assert f.status("GEN-1") == cf.WARN


def test_ext_1_extension_must_be_an_object():
    assert _response(_mutated(extension=["x"])).status("EXT-1") == cf.FAIL
    assert _response(_mutated(extension={"org.example": 1})).status("EXT-1") == cf.PASS


def test_disc_rules_on_broken_descriptors():
    body = {"services": [
        {"hook": "patient-view", "id": "a", "description": "d", "title": "t"},
        {"hook": "patient-view", "id": "a", "description": "d", "title": "t"},  # DISC-5
        {"hook": "order-sign", "id": "a", "description": "d", "title": "t"},  # same id, other hook: allowed
        {"hook": "patient-view", "id": "b", "prefetch": {}},  # DISC-4 description, DISC-6
        {"hook": "patient-view", "id": "c", "description": "d", "prefetch": {"p": "Patient/{{patientId}}"}},  # TOKEN-1
        {"hook": "patient-view", "id": "d", "description": "d", "prefetch": {"m": "X?id={{context.draftOrders.id}}"}},  # TOKEN-2
    ]}
    f = cf.check_discovery(200, "application/json", body)
    assert [x.where for x in f.items if x.rule == "DISC-5"] == ["services[1]"]
    assert f.status("DISC-4") == cf.FAIL and f.status("DISC-6") == cf.FAIL
    assert f.status("TOKEN-1") == cf.FAIL and f.status("TOKEN-2") == cf.WARN
    assert any(x.rule == "DISC-4" and x.level == cf.WARN and x.where == "services[4].title" for x in f.items)


def test_disc_1_wrong_status_or_shape():
    assert cf.check_discovery(500, "application/json", None).status("DISC-1") == cf.FAIL
    assert cf.check_discovery(200, "application/json", {"service": []}).status("DISC-1") == cf.FAIL


def test_prefetch_5_a_412_is_conformant_only_when_prefetch_was_left_out():
    oo = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]}
    f = cf.check_service_response(412, "application/fhir+json", oo, where="s", prefetch_omitted=True)
    assert f.status("PREFETCH-5") == cf.PASS and f.failed_rules() == [] and f.status("ERR-3") == cf.PASS
    f = cf.check_service_response(412, "text/plain", None, where="s", prefetch_omitted=False)
    assert f.status("REQ-1") == cf.FAIL and f.status("ERR-3") == cf.WARN


def test_perf_1_slow_answers_warn():
    f = cf.check_service_response(200, "application/json", {"cards": []}, where="s", latency_ms=900)
    assert f.status("PERF-1") == cf.WARN


def test_feedback_malformed_and_auth_probes():
    assert cf.check_feedback_answer(200, "fb").status("FEEDBACK-2") == cf.PASS
    assert cf.check_feedback_answer(404, "fb").status("FEEDBACK-1") == cf.WARN
    # A report on a made-up card (the service issued none): refusing it says nothing about the endpoint.
    unissued = cf.check_feedback_answer(404, "fb", card_issued=False)
    assert unissued.status("FEEDBACK-1") == unissued.status("FEEDBACK-2") == cf.SKIP
    assert cf.check_feedback_answer(405, "fb", card_issued=False).status("FEEDBACK-1") == cf.WARN
    assert cf.check_feedback_answer(400, "fb").status("FEEDBACK-2") == cf.FAIL
    assert cf.check_malformed_answer(400, "application/fhir+json", None, "m").status("ERR-3") == cf.WARN
    assert cf.check_malformed_answer(200, "application/json", {"cards": []}, "m").status("REQ-2") == cf.WARN
    assert cf.check_unauthenticated(401, "", "d", credentials_given=True).status("SEC-10") == cf.PASS
    assert cf.check_unauthenticated(401, "bad kid", "d", credentials_given=True).status("SEC-10") == cf.WARN
    assert cf.check_unauthenticated(200, "{}", "d", credentials_given=True).status("SEC-2") == cf.FAIL
    assert cf.check_unauthenticated(200, "{}", "d", credentials_given=False).status("SEC-2") == cf.WARN


def test_status_order_and_report_text():
    f = cf.Findings()
    f.ok("CARD-2", "a")
    f.warn("CARD-2", "b", "w")
    assert f.status("CARD-2") == cf.WARN
    f.fail("CARD-2", "c", "too long")
    assert f.status("CARD-2") == cf.FAIL and f.status("LINK-1") == cf.SKIP
    report = cf.format_report(f, base_url="http://x")
    assert "FAIL  CARD-2" in report and "FAIL: c: too long" in report and "Result: FAIL (CARD-2)" in report
    assert f.to_json()["summary"]["FAIL"] == 1
