"""Explanation page (issue #7): the target of each ML/equation card's link (LINK-1, `absolute`)."""
from __future__ import annotations

import json

from sqlalchemy import select

from cds_service.storage import db
from cds_service.storage import explanations as explain_store
from cds_service.ui.explain_views import calibration_bins, model_card
from cds_service.ehr.patients import DemoPatients
from hooks.catalog import HOOKS
from cds_testing.apps import written_engine

BASE = "https://cds.example.org"


def _call(app, patient="demo-19"):
    """A patient-view call to the ASCVD service with the simulator's prefetch; returns (response json, hookInstance)."""
    client = app.test_client()
    bound = next(b for b in app.extensions["cds"].services["ascvd-10y-risk"])
    from cds_service.ehr.contexts import build_context, now_utc
    from cds_service.ehr.hook_calls import build_call
    from cds_service.ehr.patients import patient_from_resources

    resources = DemoPatients().resources(patient)
    call = build_call(bound, resources, build_context("patient-view", patient_from_resources(resources), now=now_utc()))
    resp = client.post("/cds-services/ascvd-10y-risk", json=call.body)
    assert resp.status_code == 200
    return resp.get_json(), call.body["hookInstance"], resources


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
    assert '<svg role="img"' in html and "Contribution of each input" in html
    for label in ("Total cholesterol", "HDL cholesterol", "Systolic blood pressure", "Current smoker"):
        assert label in html
    assert "mg/dL" in html and "Published equation" in html and "Goff" in html
    assert "http" not in html.split('id="contributions"')[1].split("</svg>")[0].replace("http://www.w3.org", "")  # nothing external


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
    assert calibration_bins(metrics) == [(0.1, 0.12, 40), (0.6, 0.55, 20)]
    # Names that could leave the model directory are never read.
    assert model_card(str(tmp_path), {"details": {"artifact": "../demo-model/1.0.0"}}) is None
    assert model_card(str(tmp_path), {"details": {}}) is None


def test_trained_model_explanation_when_an_artifact_service_is_loaded(app):
    """Every loaded service backed by a trained artifact gets the artifact's model card on its page."""
    artifacts = [b for b in app.extensions["cds"].all_services() if (b.definition.model_ref or "").startswith("artifact:")]
    for bound in artifacts:
        name = bound.definition.model_ref.removeprefix("artifact:")
        card = model_card(app.extensions["cds"].settings.model_dir, {"details": {"artifact": name}})
        assert card is not None and "html" in card, name
        assert bound.definition.hook in HOOKS
