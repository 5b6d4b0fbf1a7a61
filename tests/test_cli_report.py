"""`cds-service feedback-report`: accept/override rates and override reasons per
client, service and model version, from the service's own database (FEEDBACK-2/3)."""
from __future__ import annotations

import json

from cds_service.cli.main import main
from cds_service.feedback_request import FeedbackItem
from cds_service.storage.feedback import store_feedback
from cds_testing import security_support as s
from cds_testing.apps import written_engine
from cds_testing.fhir_factory import ascvd_prefetch, hook_request

REASONS = "http://terminology.hl7.org/CodeSystem/cds-hooks-override-reasons"


def _card(client, instance: str, **prefetch) -> dict:
    body = hook_request(prefetch=ascvd_prefetch(**prefetch))
    body["hookInstance"] = instance
    return client.post("/cds-services/ascvd-10y-risk", json=body).get_json()["cards"][0]


def _feedback(client, *items):
    resp = client.post("/cds-services/ascvd-10y-risk/feedback", json={"feedback": list(items)})
    assert resp.status_code == 200


def test_report_rates_and_reasons_per_model_version(make_app, tmp_path, capsys):
    app = make_app()
    client = app.test_client()
    high = _card(client, "h-1", tc=280, hdl=32, sbp=165, smoker=True, birth_date="1956-01-01")
    cards = [high] + [_card(client, f"h-{i}") for i in range(2, 5)]
    ts = "2026-06-01T10:05:31Z"
    _feedback(client, {"card": high["uuid"], "outcome": "accepted", "outcomeTimestamp": ts,
                       "acceptedSuggestions": [{"id": high["suggestions"][0]["uuid"]}]})
    # Reported twice (FEEDBACK-3): counted once.
    for _ in range(2):
        _feedback(client, {"card": cards[1]["uuid"], "outcome": "overridden", "outcomeTimestamp": ts,
                           "overrideReason": {"reason": {"system": REASONS, "code": "patient-declined",
                                                         "display": "Patient declined"},
                                              "userComment": "Mrs Example prefers diet first"}})
    _feedback(client, {"card": cards[2]["uuid"], "outcome": "overridden", "outcomeTimestamp": ts})  # FEEDBACK-4: no reason
    db = app.extensions["cds"].settings.database_url

    assert main(["feedback-report", "--database-url", db, "--json"]) == 0
    [group] = json.loads(capsys.readouterr().out)["groups"]
    assert (group["service_id"], group["model"], group["model_version"]) == ("ascvd-10y-risk", "pce-goff-2013", "2013.1")
    assert group["cards_issued"] == 4 and group["cards_with_feedback"] == 3
    assert group["accepted"] == 1 and group["overridden"] == 2
    assert group["acceptance_rate"] == 0.25 and group["override_rate"] == 0.5
    assert group["override_reasons"] == [{"system": REASONS, "code": "patient-declined", "display": "Patient declined", "cards": 1}]

    assert main(["feedback-report", "--database-url", db]) == 0
    text = capsys.readouterr().out
    assert "ascvd-10y-risk  pce-goff-2013  2013.1" in text
    assert "1 (25.0%)" in text and "2 (50.0%)" in text and "Patient declined" in text
    assert "Mrs Example" not in text and "free-text comments (not shown" in text  # comments may name a patient


def test_report_on_an_empty_database_and_a_missing_one(make_app, tmp_path, capsys):
    app = make_app()
    assert main(["feedback-report", "--database-url", app.extensions["cds"].settings.database_url]) == 0
    assert "No cards issued and no feedback received yet." in capsys.readouterr().out
    assert main(["feedback-report", "--database-url", f"sqlite:///{tmp_path}/nothing-here.sqlite3"]) == 2
    assert "no database at" in capsys.readouterr().err
    assert not (tmp_path / "nothing-here.sqlite3").exists()  # the report never creates a database


def test_report_reads_the_database_url_of_the_configuration(make_app, tmp_path, capsys, monkeypatch):
    app = make_app()
    _card(app.test_client(), "cfg-1")
    written_engine(app)  # the CLI reads the database: the call's rows are committed after its answer
    config = tmp_path / "cds.toml"
    config.write_text(f'database_url = "{app.extensions["cds"].settings.database_url}"\n')
    for name in [k for k in __import__("os").environ if k.startswith("CDS_")]:
        monkeypatch.delenv(name)
    assert main(["feedback-report", "--config", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["groups"][0]["cards_issued"] == 1


def test_report_is_per_client_and_can_be_limited_to_one(make_app, capsys):
    """One EHR's cards and feedback are never counted with another's (two clients
    here got the same card uuid), and `--client` prints one client's rows only."""
    app = make_app()
    engine = written_engine(app)
    for iss in (s.SANDBOX_ISS, s.EPIC_ISS):
        s.issue_card(app, "same-card-uuid", iss=iss)
    s.issue_card(app, "epic-only-card", iss=s.EPIC_ISS, tenant="north")
    ts = "2026-06-01T10:05:31Z"
    store_feedback(engine, s.SERVICE_ID, (s.EPIC_ISS, ""), [FeedbackItem("same-card-uuid", "overridden", ts)])
    db = app.extensions["cds"].settings.database_url

    assert main(["feedback-report", "--database-url", db, "--json"]) == 0
    groups = {(g["iss"], g["tenant"]): g for g in json.loads(capsys.readouterr().out)["groups"]}
    assert set(groups) == {(s.SANDBOX_ISS, ""), (s.EPIC_ISS, ""), (s.EPIC_ISS, "north")}
    assert [(g["cards_issued"], g["overridden"]) for g in groups.values()] == [(1, 1), (1, 0), (1, 0)]  # sorted by client

    assert main(["feedback-report", "--database-url", db, "--json", "--client", s.EPIC_ISS, "--tenant", "north"]) == 0
    [only] = json.loads(capsys.readouterr().out)["groups"]
    assert (only["iss"], only["tenant"], only["cards_issued"]) == (s.EPIC_ISS, "north", 1)
    assert main(["feedback-report", "--database-url", db, "--client", s.SANDBOX_ISS]) == 0
    text = capsys.readouterr().out
    assert s.SANDBOX_ISS in text and s.EPIC_ISS not in text
