"""Explanation page: the target of each ML/equation card's link (LINK-1, `absolute`), written so that
a clinician can check the basis of the card (FDA CDS guidance, non-device criterion 4)."""
from __future__ import annotations

import json
import re

from sqlalchemy import select

from cds_service.ehr.patients import DemoPatients
from cds_service.storage import db
from cds_service.storage import explanations as explain_store
from cds_service.ui.explain_views import calibration_bins, model_card
from cds_testing.apps import written_engine
from hooks.catalog import HOOKS

BASE = "https://cds.example.org"


# demo-01: a 10-year PCE risk of 29 % decides her card (2018 AHA/ACC 4.4.2, the PCE group).
def _call(app, patient="demo-01", service="ascvd-10y-risk", hook="patient-view", draft=None):
    """A call to a service with the simulator's prefetch; returns (response json, hookInstance, resources)."""
    client = app.test_client()
    bound = next(b for b in app.extensions["cds"].services[service] if b.definition.hook == hook)
    from cds_service.ehr.contexts import build_context, now_utc
    from cds_service.ehr.drafts import DRAFTS_BY_KEY
    from cds_service.ehr.hook_calls import build_call
    from cds_service.ehr.patients import patient_from_resources

    resources = DemoPatients().resources(patient)
    drafts = [DRAFTS_BY_KEY[draft]] if draft else ()
    call = build_call(bound, resources, build_context(hook, patient_from_resources(resources), now=now_utc(), drafts=drafts))
    resp = client.post(f"/cds-services/{service}", json=call.body)
    assert resp.status_code == 200
    return resp.get_json(), call.body["hookInstance"], resources


def _page(app, **call) -> tuple[dict, str]:
    """(the first card linking to an explanation, that page's HTML)."""
    body, _, _ = _call(app, **call)
    card = next(c for c in body["cards"] if c.get("links"))
    path = next(link["url"] for link in card["links"] if link["type"] == "absolute").removeprefix(BASE)
    page = app.test_client().get(path)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    return card, page.get_data(as_text=True)


def _section(html: str, element_id: str) -> str:
    return html.split(f'id="{element_id}"', 1)[1].split("</section>", 1)[0]


def _absolute(body: dict) -> str:
    """The path of the card's `absolute` explanation link (a capability URL)."""
    url = next(link["url"] for link in body["cards"][0]["links"] if link["type"] == "absolute")
    return url.removeprefix(BASE)


def test_link1_link2_risk_cards_link_to_the_explanation_page_smart_first_absolute_fallback(app):
    """LINK-1/LINK-2: a `smart` link to /smart/launch whose appContext carries the call's capability
    token, then the `absolute` fallback to /explain/<token>, both under the public base URL."""
    body, hook_instance, _ = _call(app)
    smart, absolute = body["cards"][0]["links"]
    assert smart["type"] == "smart" and smart["url"] == f"{BASE}/smart/launch"
    token = json.loads(smart["appContext"])["explanation"]
    grant = app.extensions["cds"].link_signer.verify(token)
    assert (grant.service_id, grant.hook_instance, grant.client) == ("ascvd-10y-risk", hook_instance, ("", ""))
    assert absolute["type"] == "absolute" and "appContext" not in absolute  # LINK-2: appContext only on smart
    assert absolute["url"] == f"{BASE}/explain/{token}" and hook_instance not in absolute["url"]


def test_explanation_shows_score_chart_inputs_and_equation_model_card(app):
    body, hook_instance, _ = _call(app)
    page = app.test_client().get(_absolute(body))
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    score = body["cards"][0]["extension"]["org.cdsml.prediction"]["score"]
    assert f"{100 * score:.1f}%" in html  # the same number as on the card (traceability)
    assert '<svg role="img" aria-label="What drove the ACC/AHA Pooled Cohort Equations"' in html
    for label in ("Total cholesterol", "HDL cholesterol", "Systolic blood pressure", "Current smoker"):
        assert label in html
    assert "mg/dL" in html and "Published equation" in html and "Goff" in html
    assert "http" not in html.split('id="contributions"')[1].split("</svg>")[0].replace("http://www.w3.org", "")  # nothing external


def test_a_risk_in_percent_with_its_bands_and_contributions_in_percentage_points(app):
    """The PCE risk in %, its 2018 AHA/ACC band, each input's change in risk in percentage points against the
    reference profile (ordered, signed, red for worse), and the log-hazard terms only in the technical section."""
    card, html = _page(app)
    result = _section(html, "score")
    assert re.search(r'<p class="score">\d+\.\d%</p>', result)
    assert "High risk (≥ 20%) ← this patient" in result.replace("</strong>", "").replace("<strong>", "")
    terms = _section(html, "contributions")
    changes = re.findall(r"<td data-label=\"Change\">([+-]\d+\.\d) pp</td>", terms)
    assert len(changes) == 7 and [abs(float(c)) for c in changes] == sorted((abs(float(c)) for c in changes), reverse=True)
    assert 'class="worse"><td>Age</td>' in terms and "raises the risk (worse)" in terms
    assert "whose risk is" in terms and "age 55, TC 170, HDL 50, SBP 110 untreated" in terms
    technical = terms.split('<details class="technical">')[1].split("</details>")[0]
    assert "log-hazard" in technical and re.search(r"<td>[+-]\d\.\d{3}</td>", technical)
    outside = terms.replace(technical, "")
    assert not re.search(r"[+-]\d+\.\d{3}\b", outside) and "Reference profile" not in html and "linear predictor (" not in outside
    evidence = _section(html, "model-card")
    assert "DeFilippis AP et al. Ann Intern Med 2015" in evidence and "Over-estimates risk in contemporary cohorts" in evidence


def test_a_card_decided_without_the_risk_does_not_headline_it(app):
    """2018 AHA/ACC 4.2: LDL-C >= 190 (demo-19) decides a high-intensity statin without risk estimation. The PCE was
    computed (33.7 %), but the page shows what decided and the PCE only as context marked "not used for this
    decision" — never as the patient's result, in the HTML and in the JSON."""
    card, html = _page(app, patient="demo-19")
    assert "no risk estimate needed" in card["summary"] and card["extension"]["org.cdsml.prediction"]["scoreUsed"] is False
    result = _section(html, "score")
    assert "What decided:</strong> " + card["summary"].replace(">=", "&gt;=") in result
    assert not re.search(r'<p class="score">\d', result)  # no headline percentage
    assert "Not used for this decision</strong> (shown as context only)" in result and "33.7%" in result
    assert "context, not used for this decision" in _section(html, "contributions")
    url = next(link["url"] for link in card["links"] if link["type"] == "absolute").removeprefix(BASE)
    page = app.test_client().get(url + ".json").get_json()
    assert page["decided_without_score"] == card["summary"] and page["results"][0]["used"] is False
    # A card that did use the score headlines it (demo-01, the PCE group).
    card, html = _page(app)
    assert "scoreUsed" not in card["extension"]["org.cdsml.prediction"] and "What decided" not in html
    assert re.search(r'<p class="score">\d+\.\d%</p>', _section(html, "score"))


def test_egfr_in_its_own_unit_with_its_bands_and_factors(app):
    """eGFR is mL/min/1.73 m² (never '2397.2 %'), with the KDIGO category; its contributions are the factors of
    the published product, said to lower a value where higher is better (no 'red raises the risk'); the
    Cockcroft-Gault clearance beside it in mL/min."""
    card, html = _page(app, patient="demo-29", service="renal-dosing", hook="order-sign", draft="ibuprofen")
    egfr = _section(html, "score").split('id="result-cockcroft-gault-1976"')[0]
    assert re.search(r'<p class="score">\d+ mL/min/1\.73 m²</p>', egfr) and "%</p>" not in egfr
    assert "G4: severely decreased (15-29) ← this patient" in egfr.replace("</strong>", "").replace("<strong>", "")
    assert re.search(r'<p class="score">\d+(\.\d)? mL/min</p>', _section(html, "score"))
    terms = _section(html, "contributions")
    assert "Equation constant</td><td></td><td>142</td>" in terms and "× 1.012" in terms
    assert "A higher eGFR is better" in terms and "raises the risk" not in terms and 'class="key worse">Red' not in terms
    assert "Age: 140 - age" in terms and "(1/72)" in terms  # Cockcroft-Gault's own factors, checkable by hand
    assert "Inker LA et al. N Engl J Med 2021" in _section(html, "model-card")
    assert "No: the 2021 equation was developed without race" in _section(html, "source-attributes")


def test_news2_page_shows_qsofa_and_the_af_page_the_has_bled_chart(app):
    """A service's `[model] secondary` scores are on its page with their own unit, bands, chart and evidence."""
    _, html = _page(app, patient="demo-24", service="deterioration-scores", hook="encounter-start")
    for model_id, title in (("news2", "National Early Warning Score 2"), ("qsofa", "quick SOFA")):
        assert f'id="result-{model_id}"' in html and f'id="evidence-{model_id}"' in html
        assert "<svg" in html.split(f'id="terms-{model_id}"')[1].split("</table>")[0], model_id
    assert re.search(r'<p class="score">≥?\d+ points</p>', html) and "Seymour CW et al. JAMA 2016" in html
    assert "Smith GB et al. Resuscitation 2013" in html
    _, html = _page(app, patient="demo-27", service="af-anticoagulation", hook="order-sign", draft="apixaban")
    assert "<svg" in html.split('id="terms-has-bled"')[1].split("</table>")[0]
    assert "Pisters R et al. Chest 2010" in html and "0.72" in html and "Lip GYH et al. Chest 2010" in html


def test_human_units_on_the_page(app):
    _, html = _page(app, patient="demo-24", service="deterioration-scores", hook="encounter-start")
    inputs = _section(html, "inputs")
    assert "°C" in inputs and "mm Hg" in inputs
    for raw in ("Cel", "mm[Hg]", "{#}", "{score}", " a<"):
        assert raw not in inputs, raw


def test_not_calculated_card_has_a_why_link_naming_what_would_make_it_computable(app):
    """demo-04 has no smoking status: the PCE is not calculated; the card's link says so and the page names
    the input that would make it computable. The card's own text is the builder's."""
    card, html = _page(app, patient="demo-04")
    assert [link["label"] for link in card["links"]] == ["Why not calculated? (opens inside the EHR)",
                                                          "Why not calculated? What is missing, what would make it computable"]
    computable = html.split('id="computable-pce-goff-2013"')[1].split("</div>")[0]
    assert "What would make it computable" in computable and "Current smoker: not recorded" in computable


def test_outside_the_population_the_page_says_nothing_would_make_it_apply(make_app):
    """A 2-year-old is outside NEWS2's population: the page names the criterion, not a missing input."""
    from cds_service.storage.explanations import needs

    app = make_app()
    bound = app.extensions["cds"].services["deterioration-scores"][0]
    criterion = next(c for c in bound.definition.population if c.feature == "age")
    from cds_service.applicability import NOT_APPLICABLE, Applicability, Finding
    from models.feature_vector import Feature

    ctx = type("Ctx", (), {"applicability": Applicability(NOT_APPLICABLE, (Finding(criterion, Feature("age", "Age", 2.0, "a")),)),
                           "service": bound.definition, "features": None})()
    text = needs(ctx, ())
    assert text == [f"Outside the population this service was made for: {criterion.label} (the record shows 2 years); "
                    "no input would make it apply"]


def test_explanation_as_json_with_source_attributes(app):
    """`/explain/<token>.json`: the same capability, the same numbers and words, and each model's HTI-1 source
    attributes (intended use, out-of-scope use, inputs incl. race/ethnicity, development and validation data,
    fairness, external validation, update schedule)."""
    body, _, _ = _call(app)
    client = app.test_client()
    resp = client.get(_absolute(body) + ".json")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store" and resp.mimetype == "application/json"
    data = resp.get_json()
    (pce,) = data["results"]
    assert pce["score_text"].endswith("%") and pce["model"]["id"] == "pce-goff-2013"
    assert pce["terms"][0]["text"].endswith(" pp") and pce["terms"][0]["log_scale"] > 0
    a = pce["source_attributes"]
    for key in ("intended_use", "cautioned_out_of_scope_use", "input_features", "uses_race_ethnicity", "development_data",
                "validation", "external_validation", "fairness_assessment", "update_schedule", "known_limitations"):
        assert a[key], key
    assert {f["label"] for f in a["input_features"]} >= {"Total cholesterol", "Current smoker"}
    assert data["lifetime"] == {"record_hours": 24, "link_hours": 8} and data["expires"].endswith("UTC")
    assert client.get("/explain/forged.json").status_code == 404
    assert client.get(_absolute(body)[:-2] + "xx.json").status_code == 404  # an altered token opens nothing


def test_lifetime_is_configurable_and_stated(make_app):
    app = make_app(ui_explain_ttl_s=7200, ui_explain_link_ttl_s=3600)
    body, _, _ = _call(app)
    html = app.test_client().get(_absolute(body)).get_data(as_text=True)
    assert "It is kept for\n  2 hours after the call" in html and "opens it for 1 hours" in html
    missing = app.test_client().get("/explain/not-a-token").get_data(as_text=True)
    assert "for 1 hours" in missing and "kept for 2 hours" in missing


def test_a_record_of_the_earlier_shape_still_opens(app):
    """Records written before this page showed several models (one `model`, one `prediction`) open until they expire."""
    record = {"service": {"id": "ascvd-10y-risk", "title": "ASCVD", "hook": "patient-view", "description": "d",
                          "model_ref": "equation:pce-goff-2013", "population": []},
              "hook_instance": "old-call", "as_of": "2026-01-01T00:00:00+00:00", "features": [], "unavailable": {},
              "cards": [], "model_inputs": [], "required": [],
              "model": {"id": "pce-goff-2013", "version": "2013.1", "title": "PCE", "population": "p", "outcome": "o", "citation": "c"},
              "prediction": {"model": "pce-goff-2013", "version": "2013.1", "score": 0.1, "linear_predictor": -1.0,
                             "baseline": -1.5, "contributions": {"age": 0.5}, "details": {}}}
    explain_store.save(app.extensions["cds"].engine, ("", ""), record, 3600)
    token = app.extensions["cds"].link_signer.token(("", ""), "ascvd-10y-risk", "old-call")
    html = app.test_client().get(f"/explain/{token}").get_data(as_text=True)
    assert "10.0%" in html and "pp</td>" in html


def test_record_keeps_no_name_or_identifier(app):
    """The stored record has the numbers, not the patient: no id, name, birth date or resource reference."""
    _, hook_instance, resources = _call(app)
    with written_engine(app).connect() as conn:
        payload = conn.execute(select(db.explanations.c.payload)).scalar_one()
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    for secret in [patient["id"], patient["birthDate"], patient["name"][0]["family"], "Observation/", "Patient/"]:
        assert secret not in payload
    assert json.loads(payload)["hook_instance"] == hook_instance


def test_only_calls_with_a_link_are_kept(app):
    """A call whose cards do not link to an explanation (here: outside the population, no card) stores nothing."""
    body, hook_instance, _ = _call(app, patient="demo-30")  # 31 years old: outside the PCE's 40-79
    assert body["cards"] == []
    with written_engine(app).connect() as conn:
        assert conn.execute(select(db.explanations.c.hook_instance)).first() is None
    token = app.extensions["cds"].link_signer.token(("", ""), "ascvd-10y-risk", hook_instance)
    assert app.test_client().get(f"/explain/{token}").status_code == 404


def test_unknown_or_expired_explanations_are_404(make_app):
    app = make_app(ui_explain_ttl_s=60)
    client = app.test_client()
    assert client.get("/explain/not-a-token").status_code == 404
    _, hook_instance, _ = _call(app)
    engine = written_engine(app)
    assert explain_store.load(engine, ("", ""), "ascvd-10y-risk", hook_instance, 60) is not None
    import time

    assert explain_store.load(engine, ("", ""), "ascvd-10y-risk", hook_instance, 60, now=time.time() + 61) is None
    # A later write purges expired rows.
    record = explain_store.load(engine, ("", ""), "ascvd-10y-risk", hook_instance, 60)
    record["hook_instance"] = "later-call"
    explain_store.save(engine, ("", ""), record, 60, now=time.time() + 120)
    with engine.connect() as conn:
        assert [r.hook_instance for r in conn.execute(select(db.explanations.c.hook_instance))] == ["later-call"]


def test_pages_can_be_switched_off(make_app):
    """Without the ui blueprint, cards carry no explanation link (api checks for `ui.explain`)."""
    app = make_app(ui_enabled=False)
    body, _, _ = _call(app)
    assert "links" not in body["cards"][0]
    assert app.test_client().get("/analytics").status_code == 404


def test_artifact_model_card_and_calibration_plot(tmp_path):
    """A trained artifact's model_card.md is shown, and metrics.json gives the calibration plot."""
    directory = tmp_path / "demo-model" / "1.0.0"
    directory.mkdir(parents=True)
    (directory / "model_card.md").write_text("# Model card: Demo\n\n| Group | AUROC |\n| --- | --- |\n| test | 0.81 |\n<script>x</script>\n")
    metrics = {"test": {"n": 100, "events": 30, "auroc": 0.81, "brier": 0.15, "calibration_slope": 0.9,
                        "calibration_intercept": -0.1, "calibration_bins": [{"predicted": 0.1, "observed": 0.12, "n": 40},
                                                                            {"mean_predicted": 0.6, "observed_rate": 0.55, "n": 20}]}}
    (directory / "metrics.json").write_text(json.dumps(metrics))
    card = model_card(str(tmp_path), {"details": {"artifact": "demo-model/1.0.0"}})
    assert "<table>" in card["html"] and "<script>" not in card["html"]
    assert "<svg" in card["calibration"] and card["test"]["auroc"] == 0.81
    # Binned points with 95% intervals: a bin's own when given, else Wilson's from n and the observed rate.
    from cds_service.population.metrics import wilson

    assert calibration_bins(metrics) == [(0.1, 0.12, 40, *wilson(5, 40)), (0.6, 0.55, 20, *wilson(11, 20))]
    metrics["test"]["calibration_bins"][0]["ci"] = [0.05, 0.25]
    assert calibration_bins(metrics)[0] == (0.1, 0.12, 40, 0.05, 0.25)
    assert card["bins"][1]["ci"] == list(wilson(11, 20)) and card["calibration"].count("<path") > 10  # error bars
    # Names that could leave the model directory are never read.
    assert model_card(str(tmp_path), {"details": {"artifact": "../demo-model/1.0.0"}}) is None
    assert model_card(str(tmp_path), {"details": {}}) is None


def test_trained_model_explanation_when_an_artifact_service_is_loaded(app):
    """Every loaded service backed by a trained artifact gets the artifact's model card on its page."""
    artifacts = [b for b in app.extensions["cds"].all_services() if (b.definition.model_ref or "").startswith("artifact:")]
    assert any(b.definition.model_ref.startswith("artifact:whas500") for b in artifacts)
    for bound in artifacts:
        name = bound.definition.model_ref.removeprefix("artifact:")
        card = model_card(app.extensions["cds"].settings.model_dir, {"details": {"artifact": name}})
        assert card is not None and "html" in card, name
        assert bound.definition.hook in HOOKS
        # The predictors in human units, flags as yes/no (never "0/1", "a", "mm[Hg]" or a 0–1 range).
        rows = {r["label"]: r for r in card["predictors"]}
        assert rows and not any(r["unit"] in ("a", "0/1", "mm[Hg]", "kg/m2") or r["seen"] == "0–1" for r in rows.values())
        if name.startswith("whas500"):
            assert rows["Age"]["unit"] == "years" and rows["Age"]["seen"] == "30–104 years"
            assert rows["Female sex"]["unit"] == "yes / no" and rows["Female sex"]["seen"] == "yes in 39 % of the training patients"
            assert rows["Initial systolic blood pressure"]["unit"] == "mm Hg"


def test_the_full_model_card_shows_human_units_and_the_artifact_keeps_its_bytes(app):
    """The artifact's model_card.md is written in UCUM by training and covered by its manifest's sha256 (the
    artifacts reproduce byte for byte), so its Unit column becomes display text on the page: 'years', 'mm Hg',
    'kg/m²', 'yes / no' for a flag — never 'a', 'mm[Hg]', 'kg/m2' or '0/1'."""
    from pathlib import Path

    from models.artifacts import sha256_file

    model_dir = app.extensions["cds"].settings.model_dir
    for name in ("whas500-1y-mortality/2.1.0", "monica-28d-case-fatality/1.0.0"):
        md = Path(model_dir) / name / "model_card.md"
        before = sha256_file(md)
        assert "| a |" in md.read_text(encoding="utf-8")  # the file itself stays in UCUM
        html = model_card(model_dir, {"details": {"artifact": name}})["html"]
        table = html.split("Predictors and expected directions of effect", 1)[1].split("</table>", 1)[0]
        units = re.findall(r"<tr>\s*<td>[^<]*<code>[^<]*</code>\)</td>\s*<td>([^<]*)</td>", table)
        assert units and "years" in units and "yes / no" in units, units
        assert not set(units) & {"a", "mm[Hg]", "kg/m2", "0/1", "{#}", "Cel"}, units
        assert sha256_file(md) == before
    assert "mm Hg" in model_card(model_dir, {"details": {"artifact": "whas500-1y-mortality/2.1.0"}})["html"]


def test_unit_columns_leave_other_tables_and_misaligned_rows_alone():
    from cds_service.ui.explain_views import unit_columns

    md = ("| Feature | Unit | Range |\n| --- | --- | --- |\n| Age | a | 30–104 |\n| Odd | a | x | y |\n\n"
          "| Group | AUROC |\n| --- | --- |\n| a | 0.81 |\n")
    assert unit_columns(md) == ("| Feature | Unit | Range |\n| --- | --- | --- |\n| Age | years | 30–104 |\n| Odd | a | x | y |\n\n"
                                "| Group | AUROC |\n| --- | --- |\n| a | 0.81 |\n")
