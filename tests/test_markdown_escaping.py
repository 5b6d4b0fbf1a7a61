"""Text from the EHR's data never becomes Markdown or HTML in a card.

Every loaded service is called for every bundled demo patient with a link and an image injected
into every drug's text and display, every condition's text and display and every observation's
display (and into the draft orders of the order hooks). Each card `detail` is then rendered the
way the simulator renders it (CommonMark + GFM, `ui/safe_markdown.py`): no injected link or image
may appear, while the injected words must still be shown, as text, somewhere (the injection
reached a card, so the test can fail).
"""
from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from cds_service.builders import markdown
from cds_service.builders.markdown import literal
from cds_service.ehr.contexts import build_context
from cds_service.ehr.drafts import DRAFT_ORDERS
from cds_service.ehr.hook_calls import build_call
from cds_service.ehr.patients import DemoPatients, patient_from_resources
from cds_service.ui.safe_markdown import render

EVIL = " [Confirm override here](https://evil.example/phish) <img src=x onerror=alert(1)> **urgent**"
SEEN = "Confirm override here"  # what must show up as plain text
NOW = datetime.now(timezone.utc)


def _inject_concept(concept):
    if not isinstance(concept, dict):
        return
    if concept.get("text"):
        concept["text"] += EVIL
    for coding in concept.get("coding") or ():
        if coding.get("display"):
            coding["display"] += EVIL


def _inject(resource: dict) -> dict:
    kind = resource.get("resourceType")
    if kind in ("MedicationRequest", "MedicationStatement"):
        _inject_concept(resource.get("medicationCodeableConcept"))
        for dosage in resource.get("dosageInstruction") or ():
            if dosage.get("text"):
                dosage["text"] += EVIL
    elif kind in ("Condition", "Observation", "Procedure"):
        _inject_concept(resource.get("code"))
        for component in resource.get("component") or ():
            _inject_concept(component.get("code"))
    elif kind == "Medication":
        _inject_concept(resource.get("code"))
    return resource


def _assert_inert(detail: str, where: str) -> str:
    html = str(render(detail))
    assert "evil.example" not in "".join(a for a in html.split('href="')[1:]), where  # no link to it
    assert "<img" not in html and "onerror" not in html.replace("onerror=alert", ""), where
    assert "<strong>urgent</strong>" not in html, where
    return html


@pytest.fixture(scope="module")
def patients():
    return DemoPatients()


def test_every_builder_shows_injected_fhir_text_literally(make_app, patients):
    app = make_app()
    client = app.test_client()
    shown = set()
    for bound in app.extensions["cds"].all_services():
        hook = bound.definition.hook
        drafts = list(DRAFT_ORDERS) if hook in ("order-select", "order-sign") else []
        for pid in patients.ids:
            resources = [_inject(r) for r in patients.resources(pid)]
            patient = patient_from_resources(resources, source=pid)
            context = build_context(hook, patient, now=NOW, drafts=drafts)
            for entry in (context.get("draftOrders") or {}).get("entry", []):
                _inject(entry["resource"])
            call = build_call(bound, resources, context)
            resp = client.post(f"/cds-services/{bound.definition.id}", json=call.body)
            assert resp.status_code == 200, (bound.definition.id, pid, resp.data[:300])
            for card in resp.get_json()["cards"]:
                html = _assert_inert(card.get("detail", ""), f"{bound.definition.id} / {pid}")
                if SEEN in html:
                    shown.add(bound.definition.id)
    # The drug text reaches the cards of the order-time services: the check above saw the injection.
    assert {"renal-dosing", "af-anticoagulation"} & shown, shown


@pytest.mark.parametrize("text", [EVIL, "1. first", "- item", "# heading", "| a | b |", "`code`", "https://evil.example",
                                  "www.evil.example", "x@evil.example", "a\nb\r\n# c", "&lt;script&gt;"])
def test_literal_renders_as_the_same_text(text):
    """Whatever the text, the rendered paragraph shows exactly its characters (line breaks as spaces)."""
    html = str(render("Drug: " + literal(text)))
    assert html.count("<p>") == 1 and "<a " not in html and "<h1" not in html and "<li" not in html and "<table" not in html
    expected = " ".join(text.split()).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert html.strip() == f"<p>Drug: {expected}</p>"


@pytest.mark.parametrize("text", ["1) first", "- item", "-5 mg", "+ x", "http://evil.example", "A: b://c", "2026-11-29",
                                  "Total cholesterol (mass/volume)", "5) x", "12345678) y"])
def test_plain_text_skips_escaping_only_when_escaping_would_not_change_it(text):
    """`literal`'s shortcut for plain text gives what the full escape gives."""
    assert literal(text) == markdown._escape(" ".join(text.split()))


def test_plain_text_shortcut_matches_the_full_escape_on_random_text():
    """Random strings over the plain alphabet and the characters that matter at a line's start: the shortcut
    and the full escape agree on every one."""
    rng = random.Random(7)
    alphabet = "ab1-+:/()%'=, .#w)"
    for _ in range(5000):
        text = " ".join("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8))).split())
        assert literal(text) == markdown._escape(text), text
