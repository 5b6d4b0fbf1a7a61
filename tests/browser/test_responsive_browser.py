"""Every page at an EHR side panel's width (400 px) and on a desktop (1,280 px), in headless Chromium
against the demo configuration under gunicorn: the simulator with its cards, the explanation pages of
every kind of score (a risk, a product equation, point scores with their secondary scores, a trained
model), the feedback analytics and the population worklist (both behind the operator login).

On each page, at each width:
- no horizontal overflow: `document.documentElement.scrollWidth <= innerWidth`;
- chart text legible: every rendered SVG text is at least 11 px (font size × the SVG's screen scale);
- tables inside the screen, scrolling inside their own box when wider;
- WCAG 2.1 AA contrast of every visible text element, from computed colours (relative luminance and
  contrast ratio as WCAG 2.1 defines them, 1.4.3): 4.5:1, or 3:1 for large text (≥ 24 px, or ≥ 18.66 px
  bold); disabled controls are exempt, as WCAG says.
Screenshots (full page) go to the `screenshots` directory, printed at the end of the session.
"""
from __future__ import annotations

import pytest
import requests

from .test_simulator_browser import ASCVD_PATIENT, DEMO_ANALYTICS_TOKEN, MI_PATIENT, RENAL_PATIENT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

WIDTHS = (400, 1280)
OPERATOR = {"username": "operator", "password": DEMO_ANALYTICS_TOKEN}
# demo-24: emergency visit with abnormal vital signs (NEWS2 with qSOFA); demo-27: CKD 3 with AF (CHA2DS2-VASc, HAS-BLED).
BEDSIDE_PATIENT, AF_PATIENT = "demo-24", "demo-27"

# Measures the page in the browser; returns plain data for the assertions.
MEASURE = """() => {
  const parse = (c) => {
    const m = /rgba?\\(([^)]+)\\)/.exec(c || "");
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const over = (top, bottom) => ({r: top.r * top.a + bottom.r * (1 - top.a), g: top.g * top.a + bottom.g * (1 - top.a),
                                   b: top.b * top.a + bottom.b * (1 - top.a), a: 1});
  const channel = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
  const luminance = (c) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  const ratio = (a, b) => { const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x); return (hi + 0.05) / (lo + 0.05); };
  const visible = (el) => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
                            return r.width > 0 && r.height > 0 && s.visibility !== "hidden"; };

  const out = {scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
               svgTexts: 0, smallText: [], tables: 0, tablesOutside: [], texts: 0, lowContrast: []};
  for (const t of document.querySelectorAll("svg text")) {
    if (!visible(t)) continue;
    const m = t.getScreenCTM();
    const px = parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b);
    out.svgTexts++;
    if (px < 11) out.smallText.push([t.textContent.slice(0, 40), Math.round(px * 10) / 10]);
  }
  for (const table of document.querySelectorAll("table")) {
    if (!visible(table)) continue;
    out.tables++;
    const box = (table.closest(".table-scroll") || table).getBoundingClientRect();
    if (box.left < -0.5 || box.right > window.innerWidth + 0.5) out.tablesOutside.push(table.id || table.className || "table");
  }
  const all = document.querySelectorAll("body *:not(script):not(style)");
  for (const el of all) {
    if (el.closest("svg") || !visible(el)) continue;
    const own = Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || el.closest(":disabled")) continue;  // WCAG 1.4.3: inactive controls are exempt
    const s = getComputedStyle(el);
    let opacity = 1;
    for (let e = el; e; e = e.parentElement) opacity *= parseFloat(getComputedStyle(e).opacity);
    let bg = {r: 255, g: 255, b: 255, a: 1};
    const chain = [];
    for (let e = el; e; e = e.parentElement) chain.unshift(e);
    for (const e of chain) { const c = parse(getComputedStyle(e).backgroundColor); if (c && c.a > 0) bg = over(c, bg); }
    const fg = parse(s.color);
    fg.a *= opacity;
    const shown = over(fg, bg);
    const size = parseFloat(s.fontSize), bold = parseInt(s.fontWeight, 10) >= 700;
    const large = size >= 24 || (size >= 18.66 && bold);
    const r = ratio(shown, bg);
    out.texts++;
    if (r < (large ? 3 : 4.5)) out.lowContrast.push([el.tagName + (el.className ? "." + el.className : ""),
                                                    el.textContent.trim().slice(0, 40), Math.round(r * 100) / 100]);
  }
  return out;
}"""


def _check(page, name: str, screenshots, width: int) -> dict:
    page.evaluate("() => document.querySelectorAll('details').forEach((d) => { d.open = true; })")
    m = page.evaluate(MEASURE)
    path = screenshots / f"{name}-{width}.png"
    page.add_style_tag(content=".patients { position: static; height: auto; }")  # sticky: shown once in a full-page picture
    page.screenshot(path=str(path), full_page=True)
    where = f"{name} at {width} px ({path})"
    assert m["innerWidth"] == width
    assert m["scrollWidth"] <= m["innerWidth"], f"{where}: the page is {m['scrollWidth']} px wide"
    assert not m["smallText"], f"{where}: chart text under 11 px: {m['smallText'][:5]}"
    assert not m["tablesOutside"], f"{where}: tables outside the screen: {m['tablesOutside']}"
    assert not m["lowContrast"], f"{where}: text below WCAG AA contrast: {m['lowContrast'][:8]}"
    assert m["texts"] > 10, where  # the contrast check saw the page
    return m


@pytest.fixture(scope="module")
def explanation_urls(live, browser):
    """The `absolute` explanation link of one card of each kind of score, taken from the simulator's cards."""
    base, _ = live
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    urls = {}
    try:
        for name, patient, hook, draft, service in (
                ("explain-ascvd", ASCVD_PATIENT, "patient-view", None, "ascvd-10y-risk"),
                ("explain-renal", RENAL_PATIENT, "order-sign", "ibuprofen", "renal-dosing"),
                ("explain-news2", BEDSIDE_PATIENT, "encounter-start", None, "deterioration-scores"),
                ("explain-af", AF_PATIENT, "order-sign", "apixaban", "af-anticoagulation"),
                ("explain-post-mi", MI_PATIENT, "encounter-discharge", None, "post-mi-mortality")):
            page.goto(f"{base}/simulator?patient={patient}")
            page.wait_for_selector(f"#chart-{patient}", state="visible")
            if draft:
                page.check(f"#draft-{draft}")
            page.click(f"#fire-{hook}")
            page.wait_for_selector("#status.ok")
            card = page.locator(f".card[data-service-id='{service}']").first
            card.wait_for()
            urls[name] = card.locator("a.card-link:not(.smart-link)").get_attribute("href")
    finally:
        context.close()
    return urls


@pytest.mark.parametrize("width", WIDTHS)
def test_simulator_is_usable_at_both_widths(live, browser, screenshots, width):
    """The patient list, the chart and the cards fit the width; a card's summary is a heading, its dismiss
    reasons are a fieldset with a legend, and only the card list is a live region."""
    base, _ = live
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{base}/simulator?patient={ASCVD_PATIENT}")
        page.wait_for_selector(f"#chart-{ASCVD_PATIENT}", state="visible")
        page.click("#fire-patient-view")
        page.wait_for_selector("#status.ok")
        card = page.locator(".card[data-service-id='ascvd-10y-risk']")
        card.locator("button.override-open").click()
        assert card.locator("h4.summary").count() == 1
        assert card.locator("form.override fieldset legend").inner_text().startswith("Why are you dismissing")
        assert card.locator("form.override fieldset input[type=radio]").count() >= 1
        live_regions = page.evaluate("""() => Array.from(document.querySelectorAll(
            '[aria-live], [role=status], [role=alert], [role=log]')).map((e) => e.id || e.className)""")
        assert live_regions == ["card-list"]
        assert page.get_attribute("#card-list", "aria-live") == "polite"
        assert page.get_attribute("#card-list", "aria-busy") == "false"  # set while the hook runs, cleared after
        if width == 400:  # one column: the card list is as wide as the screen allows, not a sliver
            assert page.locator("#cards").bounding_box()["width"] > 300
        _check(page, "simulator", screenshots, width)
    finally:
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", ["explain-ascvd", "explain-renal", "explain-news2", "explain-af", "explain-post-mi"])
def test_explanation_pages_are_usable_at_both_widths(browser, explanation_urls, screenshots, name, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        assert page.goto(explanation_urls[name]).status == 200
        m = _check(page, name, screenshots, width)
        text = page.inner_text("main")
        assert "Source attributes" in text and "Known limitations" in text or "model card" in text.lower()
        if name != "explain-renal":
            assert m["svgTexts"] > 5  # the charts were drawn and measured
    finally:
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_operator_pages_are_usable_at_both_widths(live, browser, screenshots, width):
    """/analytics and /population behind the operator login (HTTP Basic in the browser)."""
    base, _ = live
    for path in ("/population", "/analytics"):
        refused = requests.get(base + path, timeout=10)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Basic ")
    context = browser.new_context(viewport={"width": width, "height": 900}, http_credentials=OPERATOR)
    page = context.new_page()
    try:
        assert page.goto(base + "/population").status == 200
        assert page.locator("#worklist tbody tr").count() >= 5
        _check(page, "population", screenshots, width)
        assert page.goto(base + "/analytics").status == 200
        _check(page, "analytics", screenshots, width)
    finally:
        context.close()
