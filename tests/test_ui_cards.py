"""Cards rendered as an EHR shows them (CARD-1..5, SUGG-1, LINK-1, OVR-1), and safely: a card's markdown
is not allowed to run script or link to javascript: URLs in the simulator."""
from __future__ import annotations

import pytest

from cds_service.ui.safe_markdown import render

CARD = {
    "uuid": "c-1", "summary": "Dose too high <b>now</b>", "indicator": "critical",
    "source": {"label": "Label", "url": "javascript:alert(1)"},
    "detail": "**Stop** <script>alert(1)</script> [bad](javascript:alert(2)) [ok](https://example.org)\n\n| a | b |\n| --- | --- |\n| 1 | 2 |",
    "suggestions": [{"label": "Reduce dose", "uuid": "s-1", "isRecommended": True,
                     "actions": [{"type": "update", "description": "d", "resource": {"resourceType": "MedicationRequest"}}]}],
    "selectionBehavior": "at-most-one",
    "overrideReasons": [{"system": "http://x", "code": "r1", "display": "Patient declined"}],
    "links": [{"label": "Why?", "url": "https://cds.example.org/explain/x/y", "type": "absolute"},
              {"label": "Evil", "url": "javascript:alert(3)", "type": "absolute"}],
}


@pytest.fixture
def html(make_app):
    client = make_app(ui_simulator=True).test_client()
    resp = client.post("/simulator/api/cards", json={"service_id": "svc", "response": {"cards": [CARD, {"summary": "plain", "indicator": "info"}]}})
    assert resp.status_code == 200 and resp.get_json()["count"] == 2
    return resp.get_json()["html"]


def test_indicator_summary_and_detail(html):
    assert 'class="card indicator-critical"' in html and 'class="card indicator-info"' in html
    assert "Dose too high &lt;b&gt;now&lt;/b&gt;" in html  # summary is text (CARD-2)
    assert "<strong>Stop</strong>" in html and "<table>" in html  # detail is GitHub-flavoured markdown


def test_no_script_and_no_javascript_links(html):
    assert "<script>" not in html and "&lt;script&gt;" in html  # raw HTML shown as text
    assert "href=\"javascript" not in html and "javascript:alert(1)" not in html  # the source url is dropped, the link is text
    assert 'href="https://example.org"' in html and 'href="https://cds.example.org/explain/x/y"' in html


def test_suggestions_override_reasons_and_feedback_hooks(html):
    assert 'data-card-uuid="c-1"' in html and 'data-service-id="svc"' in html
    assert 'data-suggestion-uuid="s-1"' in html and "Reduce dose" in html
    assert 'data-code="r1"' in html and "Patient declined" in html  # OVR-1: the card's own reasons
    assert "cannot receive feedback" in html  # the card without a uuid (FEEDBACK-3)


def test_markdown_renderer_escapes_raw_html():
    out = str(render('<img src=x onerror="alert(1)"> and <a href="javascript:x">y</a>'))
    assert "<img" not in out and "<a href" not in out and "&lt;img" in out


def test_bad_render_request_is_400(make_app):
    client = make_app(ui_simulator=True).test_client()
    resp = client.post("/simulator/api/cards", json={"response": {"cards": "nope"}})
    assert resp.status_code == 400 and resp.get_json()["resourceType"] == "OperationOutcome"


def test_accessible_structure_summary_heading_and_dismiss_fieldset(html):
    """WCAG 2.1: a card's summary is a heading (1.3.1, 2.4.6) and its dismiss reasons are a group of radios
    named by a legend (1.3.1); the per-card status is not a live region of its own (the card list is)."""
    assert '<h4 class="summary">Dose too high &lt;b&gt;now&lt;/b&gt;</h4>' in html
    form = html.split('<form class="override"')[1].split("</form>")[0]
    fieldset = form.split("<fieldset>")[1].split("</fieldset>")[0]
    assert "<legend>Why are you dismissing this card?</legend>" in fieldset and 'type="radio"' in fieldset
    assert 'role="status"' not in html and "aria-live" not in html


def test_simulator_has_one_targeted_live_region(make_app):
    """Only the card list (status line and cards) is announced, not the whole chart."""
    page = make_app(ui_simulator=True).test_client().get("/simulator").get_data(as_text=True)
    assert page.count("aria-live") == 1 and 'id="card-list" aria-live="polite"' in page
    chart = page.split('<section class="chart"')[1].split(">")[0]
    assert "aria-live" not in chart
    card_list = page.split('id="card-list"')[1]
    assert card_list.index('id="status"') < card_list.index('id="cards"') < card_list.index("</section>")
    assert 'role="status"' not in page


def test_warning_badge_text_meets_wcag_aa_contrast():
    """The white-on-amber warning badge (at about 11 px bold: normal text) needs 4.5:1 (WCAG 2.1, 1.4.3)."""
    import re
    from pathlib import Path

    css = (Path(__file__).resolve().parent.parent / "cds_service" / "ui" / "static" / "style.css").read_text()
    colours = dict(re.findall(r"--(\w+):\s*(#[0-9a-fA-F]{6})", css))

    def luminance(hex_colour):
        channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    for name in ("info", "warning", "critical"):  # badges: white text on the indicator colour
        ratio = (1.05) / (luminance(colours[name]) + 0.05)
        assert ratio >= 4.5, (name, colours[name], round(ratio, 2))
