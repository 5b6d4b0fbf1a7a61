"""Alert-fatigue controls declared per service in its file (`[alerts]`), through
the HTTP API. Exact repeats held back within a window (per client, per user and patient), snoozes set by
feedback and their expiry, silent info cards, shadow mode end to end with its report, the metrics, and
the defaults shipped in hooks/ measured on the simulator's 30 demo patients.

Time is a `FakeClock` on the app's card history: no test sleeps.
"""
from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import replace
from datetime import datetime, timezone

import pytest
import responses
from sqlalchemy import select

from cds_service.cli.main import main as cli_main
from cds_service.ehr.drafts import DRAFTS_BY_KEY
from cds_service.ehr.patients import DemoPatients
from cds_service.storage import db
from cds_testing import security_support as s
from cds_testing.apps import service_file, services_dir, without_alerts, written_engine
from cds_testing.chart_opens import fire, open_every_chart
from cds_testing.clock import FakeClock
from cds_testing.db_servers import required_postgres
from cds_testing.fhir_factory import ascvd_prefetch, hook_request
from hooks import ServiceFileError

SID = "ascvd-10y-risk"
URL = f"/cds-services/{SID}"
NAR = "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"
ASCVD = without_alerts(service_file(SID))
LOW = ascvd_prefetch()  # low risk: an info card without a suggestion (kind "risk")
INTERMEDIATE = ascvd_prefetch(gender="male", birth_date="1966-01-01", tc=230, hdl=45, sbp=140)  # moderate statin
HIGH = ascvd_prefetch(gender="male", birth_date="1956-01-01", tc=280, hdl=32, sbp=165, smoker=True)  # high-intensity statin
OPERATOR = "operator-token-0123456789"
SALT = "alert-controls-test-salt"


def ascvd_with(alerts: str) -> dict[str, str]:
    """The ASCVD service file with this `[alerts]` table."""
    return {SID: f"{ASCVD}\n[alerts]\n{alerts}\n"}


def alerts_app(make_app, alerts: str, **settings):
    app = make_app(services=ascvd_with(alerts), alerts=True, audit_salt=SALT, **settings)
    app.extensions["cds"].card_history.clock = FakeClock(1_800_000_000.0)
    return app


def clock(app) -> FakeClock:
    return app.extensions["cds"].card_history.clock


def call(app, prefetch, *, user="Practitioner/example", instance=None, headers=None, pid="p1") -> list[dict]:
    body = hook_request(prefetch=prefetch, pid=pid, userId=user)
    body["hookInstance"] = instance or str(uuid.uuid4())
    resp = app.test_client().post(URL, json=body, headers=headers or {})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    written_engine(app)  # the next call comes seconds later in an EHR: this one's rows are committed by then
    return resp.get_json()["cards"]


def override(app, card: dict, code: str, headers=None):
    item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-06-01T10:00:00Z",
            "overrideReason": {"reason": {"system": NAR, "code": code}}}
    resp = app.test_client().post(f"{URL}/feedback", json={"feedback": [item]}, headers=headers or {})
    assert resp.status_code == 200, resp.get_data(as_text=True)


def decisions(app) -> list:
    t = db.card_decisions
    with written_engine(app).connect() as conn:
        return conn.execute(select(t).order_by(t.c.id)).all()


# ---- (a) repeats: the same content for the same user and patient, within the indicator's window ---------------

def test_an_identical_card_is_held_back_within_its_window_and_shown_again_after_it(make_app):
    app = alerts_app(make_app, "repeat_window_s = { warning = 3600 }")
    (card,) = call(app, HIGH)
    assert card["indicator"] == "warning"
    clock(app).advance(3599)
    assert call(app, HIGH) == []  # within the hour: an exact repeat
    clock(app).advance(2)  # 3601 s after it was shown
    assert [c["summary"] for c in call(app, HIGH)] == [card["summary"]]
    assert [r.outcome for r in decisions(app)] == ["shown", "repeat", "shown"]


def test_a_card_whose_content_changed_is_never_a_repeat(make_app):
    """Another value in the same band, another band: shown at once."""
    app = alerts_app(make_app, "repeat_window_s = { info = 604800, warning = 3600 }")
    first = call(app, INTERMEDIATE)[0]["summary"]
    changed = call(app, ascvd_prefetch(gender="male", birth_date="1966-01-01", tc=236, hdl=45, sbp=140))[0]["summary"]
    band = call(app, HIGH)[0]["summary"]
    assert first.startswith("Intermediate") and changed.startswith("Intermediate") and changed != first
    assert band.startswith("High")
    assert call(app, INTERMEDIATE) == [] and call(app, HIGH) == []  # the same contents again: repeats


def test_a_window_of_zero_never_holds_a_card_back(make_app):
    app = alerts_app(make_app, "repeat_window_s = { info = 604800, warning = 0 }")
    assert len(call(app, HIGH)) == 1 and len(call(app, HIGH)) == 1


def test_a_retried_call_gets_the_same_cards(make_app):
    """IDEM-1: the same hookInstance again (a retry) is judged against the same history: same answer."""
    app = alerts_app(make_app, "repeat_window_s = { warning = 3600 }")
    first = call(app, HIGH, instance="retry-1")

    def content(cards):  # the explanation link's capability token carries its expiry time: it may differ by a second
        return [{k: v for k, v in c.items() if k != "links"} for c in cards]

    again = call(app, HIGH, instance="retry-1")
    assert first and content(again) == content(first)
    assert [len(c.get("links", [])) for c in again] == [len(c.get("links", [])) for c in first]
    assert len(decisions(app)) == 1  # the retry stored nothing twice


def test_the_history_is_read_on_a_connection_each_thread_keeps_and_a_forked_process_opens_its_own(make_app,
                                                                                                  monkeypatch):
    """SQLite: the lookups run on one connection per thread, kept out of the pool, which sees every call
    committed since (by the writer thread's connection); after a fork the child opens its own."""
    import threading
    from types import SimpleNamespace

    from cds_service.storage import card_history as module

    app = alerts_app(make_app, "repeat_window_s = { warning = 3600 }")
    history = app.extensions["cds"].card_history
    assert call(app, HIGH)
    pid, kept = history._readers.conn
    assert call(app, HIGH) == [] and history._readers.conn[1] is kept  # the first call's rows seen; the same connection
    assert kept.dbapi_connection is not None and app.extensions["cds"].engine.pool.checkedout() == 0  # not the pool's

    other: list = []
    thread = threading.Thread(target=lambda: other.append(history._reader()))
    thread.start()
    thread.join()
    assert other[0][0] is not kept and other[0][1] is False  # another thread: another connection

    # as in a worker forked after the first call (the module's view of the process id only)
    monkeypatch.setattr(module, "os", SimpleNamespace(getpid=lambda: pid + 1))
    assert call(app, HIGH, user="Practitioner/b")
    assert history._readers.conn[0] == pid + 1 and history._readers.conn[1] is not kept
    assert call(app, HIGH, user="Practitioner/b") == []  # the new connection sees the committed rows too


def test_repeats_are_per_user(make_app):
    """A card shown to one clinician is shown to the next one who opens the chart."""
    app = alerts_app(make_app, "repeat_window_s = { warning = 3600 }")
    assert call(app, HIGH, user="Practitioner/a") and call(app, HIGH, user="Practitioner/a") == []
    assert call(app, HIGH, user="Practitioner/b")


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    with required_postgres(tmp_path_factory) as url:
        yield url


@pytest.mark.integration
def test_repeats_and_snoozes_on_postgresql(make_app, postgres):
    """The history's lookups are compiled once per database dialect (db.CompiledQuery): PostgreSQL's too."""
    alerts = f'repeat_window_s = {{ warning = 3600 }}\nsnooze_reasons = ["{NAR}|action-completed"]\nsnooze_days = 1'
    app = alerts_app(make_app, alerts, database_url=postgres)
    (card,) = call(app, HIGH)
    assert call(app, HIGH) == []  # a repeat
    assert call(app, HIGH, user="Practitioner/b")  # another user
    clock(app).advance(3601)
    (again,) = call(app, HIGH)
    override(app, again, "action-completed")
    assert call(app, HIGH, user="Practitioner/c") == []  # snoozed for the patient
    assert [r.outcome for r in decisions(app)] == ["shown", "repeat", "shown", "shown", "snoozed"]


@pytest.fixture
def two_clients():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(s.SANDBOX_JKU, json=s.jwks(s.sandbox_key()))
        mock.get(s.EPIC_JKU, json=s.jwks(s.epic_key()))
        yield


def test_repeats_and_snoozes_are_per_client(make_app, tmp_path, two_clients):
    """Two EHRs send the same patient id (and user): one client's history never holds back the other's cards."""
    alerts = f'repeat_window_s = {{ warning = 3600 }}\nsnooze_reasons = ["{NAR}|action-completed"]\nsnooze_days = 30'
    app = make_app(**s.auth_settings(tmp_path, audit_salt=SALT, hooks_dir=services_dir(tmp_path, ascvd_with(alerts), alerts=True)))
    app.extensions["cds"].card_history.clock = FakeClock(1_800_000_000.0)
    sandbox = lambda: s.bearer(s.sandbox_token(s.SERVICE_AUD))  # noqa: E731
    epic = lambda: s.bearer(s.epic_token(s.SERVICE_AUD))  # noqa: E731
    assert call(app, HIGH, headers=sandbox())
    assert call(app, HIGH, headers=sandbox()) == []
    (card,) = call(app, HIGH, headers=epic())  # the other client: not a repeat
    override(app, card, "action-completed", headers=s.bearer(s.epic_token(s.FEEDBACK_AUD)))
    clock(app).advance(3601)
    assert call(app, HIGH, headers=epic()) == []  # snoozed at the Epic site
    assert call(app, HIGH, headers=sandbox())  # not at the Sandbox
    assert {(r.iss, r.outcome) for r in decisions(app)} == {(s.SANDBOX_ISS, "shown"), (s.SANDBOX_ISS, "repeat"),
                                                            (s.EPIC_ISS, "shown"), (s.EPIC_ISS, "snoozed")}


def test_the_patient_and_user_are_stored_only_as_salted_hashes(make_app):
    app = alerts_app(make_app, "repeat_window_s = { warning = 3600 }")
    call(app, HIGH, pid="patient-4711", user="Practitioner/dr-who")
    (row,) = decisions(app)
    stored = json.dumps([str(v) for v in row])
    assert "patient-4711" not in stored and "dr-who" not in stored
    assert re.fullmatch(r"[0-9a-f]{64}", row.patient_hash) and re.fullmatch(r"[0-9a-f]{64}", row.user_hash)


# ---- (b) snooze through feedback ----------------------------------------------------------------------------

SNOOZE = f'snooze_reasons = ["{NAR}|action-completed"]\nsnooze_days = 1'


def test_an_override_with_a_snooze_reason_silences_the_card_until_the_snooze_expires(make_app):
    app = alerts_app(make_app, SNOOZE)  # no repeat window: only the snooze holds the card back
    (card,) = call(app, INTERMEDIATE)
    assert call(app, INTERMEDIATE)  # shown again: no snooze yet
    override(app, card, "action-completed")
    assert call(app, INTERMEDIATE) == []
    assert call(app, ascvd_prefetch(gender="male", birth_date="1966-01-01", tc=236, hdl=45, sbp=140)) == []  # same advice
    clock(app).advance(86400 + 1)
    assert call(app, INTERMEDIATE)  # a day later the snooze has expired


def test_an_override_with_another_reason_sets_no_snooze(make_app):
    app = alerts_app(make_app, SNOOZE)
    (card,) = call(app, INTERMEDIATE)
    override(app, card, "patient-refuses")  # declared on the card, not a snooze reason of this service
    assert call(app, INTERMEDIATE)


def test_a_snooze_does_not_hide_a_more_severe_card_or_another_suggested_action(make_app):
    app = alerts_app(make_app, SNOOZE)
    (low,) = call(app, LOW)
    override(app, low, "action-completed")
    assert call(app, LOW) == []
    assert [c["indicator"] for c in call(app, INTERMEDIATE)] == ["warning"]  # more severe than the snoozed info card
    (moderate,) = call(app, INTERMEDIATE)
    override(app, moderate, "action-completed")
    assert call(app, INTERMEDIATE) == []
    (high,) = call(app, HIGH)  # same kind and indicator, but a high-intensity statin: another action
    assert high["summary"].startswith("High")


# ---- (c) silent info cards --------------------------------------------------------------------------------------

def test_silent_info_cards_are_not_returned_but_warnings_and_info_cards_with_a_suggestion_are(make_app):
    app = alerts_app(make_app, 'silent_info = ["risk", "on-statin"]')
    assert call(app, LOW) == []  # low risk, nothing to do
    assert [c["indicator"] for c in call(app, HIGH)] == ["warning"]  # the same kind as a warning
    from cds_testing.fhir_factory import med_request

    on_statin = ascvd_prefetch(birth_date="1966-01-01", meds=[med_request("st", "617310", "rosuvastatin 10 MG Oral Tablet")])
    for e in on_statin["lipids"]["entry"]:
        e["resource"]["effectiveDateTime"] = "2020-01-01"  # LDL-C older than a year: a lipid panel is suggested
    (card,) = call(app, on_statin)
    assert card["summary"].startswith("On a statin") and card["suggestions"]
    assert [r.outcome for r in decisions(app)] == ["silent", "shown", "shown"]


# ---- (d) shadow mode ------------------------------------------------------------------------------------------

def test_shadow_mode_end_to_end_records_returns_nothing_and_is_reported(make_app, caplog, capsys):
    caplog.set_level(logging.WARNING, logger="cds_service")
    shadow = alerts_app(make_app, 'mode = "shadow"\nrepeat_window_s = { warning = 3600 }', analytics_token=OPERATOR)
    assert any(getattr(r, "event", None) == "shadow_mode" and r.service == SID for r in caplog.records)  # start-up warning
    resp = shadow.test_client().post(URL, json={**hook_request(prefetch=HIGH), "hookInstance": "shadow-1"})
    assert resp.status_code == 200 and resp.get_json() == {"cards": []}
    written_engine(shadow)
    assert call(shadow, HIGH) == []  # again: a repeat of what it would have shown
    (would, again) = decisions(shadow)
    assert (would.mode, would.outcome, would.indicator, would.kind) == ("shadow", "shown", "warning", "risk")
    assert would.summary.startswith("High 10-year ASCVD risk") and (would.model, would.model_version) == ("pce-goff-2013", "2013.1")
    assert (again.mode, again.outcome) == ("shadow", "repeat")
    with shadow.extensions["cds"].engine.connect() as conn:
        assert conn.execute(select(db.cards_issued)).all() == []  # nothing issued: no feedback can name it
    metrics = shadow.test_client().get("/metrics").get_data(as_text=True)
    assert 'cds_service_shadow_mode{hook="patient-view",service="ascvd-10y-risk"} 1.0' in metrics
    assert 'cds_cards_held_back_total{reason="shadow",service="ascvd-10y-risk"} 1.0' in metrics

    # The service goes live (same database, same salt); the card is shown and its suggestion accepted.
    live = alerts_app(make_app, 'mode = "live"', analytics_token=OPERATOR)
    clock(live).advance(7 * 86400)  # a week of shadow mode later
    (card,) = call(live, HIGH)
    item = {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-06-01T10:00:00Z",
            "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}]}
    assert live.test_client().post(f"{URL}/feedback", json={"feedback": [item]}).status_code == 200

    page = live.test_client().get("/analytics?format=json", headers=s.bearer(OPERATOR))
    (report,) = page.get_json()["shadow"]
    assert (report["service_id"], report["would_show"], report["patients"], report["by_indicator"]) == (SID, 1, 1, {"warning": 1})
    assert report["held_back"] == {"repeat": 1} and report["models"] == ["pce-goff-2013 2013.1"]
    assert report["later_live"] == {"accepted": 1, "overridden": 0, "no_feedback": 0, "not_shown_live": 0}
    assert live.test_client().get("/analytics?format=json").status_code == 401  # the operator's auth, as analytics
    html = live.test_client().get("/analytics", headers=s.bearer(OPERATOR)).get_data(as_text=True)
    assert 'id="shadow-report"' in html and "High 10-year ASCVD risk" in html

    url = live.extensions["cds"].settings.database_url
    assert cli_main(["shadow-report", "--database-url", url]) == 0
    out = capsys.readouterr().out
    assert f"{SID} — (auth off)" in out and "would have shown 1 card(s) (warning 1)" in out and "accepted 1" in out
    assert cli_main(["shadow-report", "--database-url", url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["services"][0]["later_live"]["accepted"] == 1


def test_shadow_report_without_shadow_rows_says_so(make_app, capsys):
    app = alerts_app(make_app, "repeat_window_s = { warning = 3600 }")
    call(app, HIGH)
    assert cli_main(["shadow-report", "--database-url", app.extensions["cds"].settings.database_url]) == 0
    assert "No service has run in shadow mode" in capsys.readouterr().out


# ---- (e) metrics ------------------------------------------------------------------------------------------------

def test_metrics_export_cards_per_chart_open_and_cards_held_back_by_reason(make_app):
    app = alerts_app(make_app, 'repeat_window_s = { warning = 3600 }\nsilent_info = ["risk"]')
    call(app, HIGH)  # 1 card
    call(app, HIGH)  # repeat
    call(app, LOW)  # silent
    text = app.test_client().get("/metrics").get_data(as_text=True)
    labels = 'hook="patient-view",service="ascvd-10y-risk"'
    assert f"cds_cards_per_call_count{{{labels}}} 3.0" in text and f"cds_cards_per_call_sum{{{labels}}} 1.0" in text
    assert 'cds_cards_held_back_total{reason="repeat",service="ascvd-10y-risk"} 1.0' in text
    assert 'cds_cards_held_back_total{reason="silent",service="ascvd-10y-risk"} 1.0' in text
    assert f"cds_service_shadow_mode{{{labels}}} 0.0" in text


# ---- start-up checks: errors name the file and the field ---------------------------------------------------------

@pytest.mark.parametrize("alerts,field,message", [
    ('mode = "quiet"', "alerts.mode", "must be 'live'"),
    ("repeat_window_s = { urgent = 60 }", "alerts.repeat_window_s", "unknown indicator 'urgent'"),
    ("repeat_window_s = { info = -1 }", "alerts.repeat_window_s.info", "whole number of seconds"),
    ("repeat_window_s = { info = 1.5 }", "alerts.repeat_window_s.info", "whole number of seconds"),
    ('silent_info = ["low-risk"]', "alerts.silent_info", "'low-risk' is not a card kind of builder 'ascvd'"),
    (f'snooze_reasons = ["{NAR}|wrong-time-workflow"]\nsnooze_days = 5', "alerts.snooze_reasons", "is not one of cards.override_reasons"),
    (f'snooze_reasons = ["{NAR}|action-completed"]', "alerts.snooze_days", "must be a number of days"),
    ("snooze_days = 5", "alerts.snooze_days", "has no effect without snooze_reasons"),
    ("repeat_windows = { info = 60 }", "alerts.repeat_windows", "unknown key 'repeat_windows' (did you mean 'repeat_window_s'?)"),
    ('history = "Renal Dosing"', "alerts.history", "must be a service id"),
])
def test_a_wrong_alerts_table_stops_start_up_naming_file_and_field(make_app, alerts, field, message):
    with pytest.raises(ServiceFileError) as err:
        make_app(services=ascvd_with(alerts), alerts=True)
    assert err.value.field == field and re.match(rf"{SID}\.toml:\d+: {re.escape(field)}: ", str(err.value)) and message in str(err.value)


def test_a_repeat_window_longer_than_the_history_kept_stops_start_up(make_app):
    with pytest.raises(ServiceFileError, match=r"alerts.repeat_window_s: 864000 s is longer than the card history kept"):
        make_app(services=ascvd_with("repeat_window_s = { info = 864000 }"), alerts=True, alert_history_days=7)


def test_history_older_than_alert_history_days_is_purged(make_app):
    app = alerts_app(make_app, "repeat_window_s = { warning = 3600 }", alert_history_days=1)
    call(app, HIGH)
    clock(app).advance(86400 + 600)  # past the retention, and past the next purge time
    call(app, LOW)
    assert [r.indicator for r in decisions(app)] == ["info"]


# ---- the defaults shipped in hooks/ ---------------------------------------------------------------------------

def _cards(calls: dict) -> list[tuple[str, str, str]]:
    return [(sid, c["indicator"], c["summary"]) for sid, per_patient in calls.items() for cards in per_patient for c in cards]


def test_simulator_patients_a_chart_open_shows_at_most_one_card_on_average_and_no_repeat(make_app, tmp_path):
    """The simulator's patients' charts opened (the 30 generated ones and the bespoke hazard patients) (patient-view fires every patient-view
    service) with the service files as shipped: <= 1.0 card per chart open on average, and the second
    open within the repeat window shows no card again. Every warning or critical card the builders make
    is still shown at the first open. (Without the [alerts] tables: 1.73 cards per chart open.)"""
    patients, now = DemoPatients(), datetime.now(timezone.utc)
    shipped = make_app(alerts=True, audit_salt=SALT, ui_enabled=False)
    client = shipped.test_client()
    first = open_every_chart(client, shipped, patients, now)
    assert len(patients.ids) >= 30 and set(first) == {"ascvd-10y-risk", "diabetes-detection"}
    per_open = len(_cards(first)) / len(patients.ids)
    assert per_open <= 1.0, f"{per_open:.2f} cards per chart open"
    second = open_every_chart(client, shipped, patients, now)
    assert [c for c in _cards(second) if c in _cards(first)] == []
    print(f"{per_open:.2f} cards per chart open over {len(patients.ids)} patients")

    everything = make_app(alerts=False, ui_enabled=False, database_url=f"sqlite:///{tmp_path}/all.sqlite3")
    built = _cards(open_every_chart(everything.test_client(), everything, patients, now))
    safety = [c for c in built if c[1] in ("warning", "critical")]
    assert safety and all(c in _cards(first) for c in safety)


RENAL_PATIENT = "demo-29"  # CKD, eGFR below 30


RENAL = ["renal-dosing", "renal-dosing-select"]
RENAL_BY_HOOK = {"order-select": "renal-dosing-select", "order-sign": "renal-dosing"}


def test_a_renal_warning_at_order_select_is_not_repeated_at_order_sign_for_the_same_order(make_app):
    """renal-dosing-select (order-select) and renal-dosing (order-sign) share one card history: the same warning
    about the same draft order, shown at selection, is not shown again at signing within the ordering session (15 min)."""
    app = make_app(services=RENAL, alerts=True, audit_salt=SALT)
    app.extensions["cds"].card_history.clock = FakeClock(1_800_000_000.0)
    client, patients, now = app.test_client(), DemoPatients(), datetime.now(timezone.utc)
    ibuprofen = DRAFTS_BY_KEY["ibuprofen"]

    def renal(hook, *drafts):
        return fire(client, app, hook, patients, RENAL_PATIENT, now, drafts=drafts)[RENAL_BY_HOOK[hook]]

    (selected,) = renal("order-select", ibuprofen)
    assert selected["indicator"] == "warning" and "ibuprofen" in selected["summary"].lower()
    assert renal("order-sign", ibuprofen) == []
    again = replace(ibuprofen, key="ibuprofen-second")  # another draft order: its own card
    assert [c["summary"] for c in renal("order-sign", again)] == [selected["summary"]]
    clock(app).advance(901)  # after the ordering session's window
    assert [c["summary"] for c in renal("order-sign", ibuprofen)] == [selected["summary"]]


def test_a_contraindication_is_shown_again_at_order_sign(make_app):
    """Critical cards have no repeat window: signing is the last point before the order takes effect."""
    app = make_app(services=RENAL, alerts=True, audit_salt=SALT)
    client, patients, now = app.test_client(), DemoPatients(), datetime.now(timezone.utc)
    metformin = DRAFTS_BY_KEY["metformin"]
    selected = fire(client, app, "order-select", patients, RENAL_PATIENT, now, drafts=[metformin])["renal-dosing-select"]
    signed = fire(client, app, "order-sign", patients, RENAL_PATIENT, now, drafts=[metformin])["renal-dosing"]
    assert [c["indicator"] for c in selected] == ["critical"] and [c["summary"] for c in signed] == [selected[0]["summary"]]


def test_every_card_kind_the_builders_make_is_declared_or_about_an_order(make_app):
    """`silent_info` names kinds from `Builder.kinds`: the list must hold every kind a builder makes (a kind
    about a draft order, "<reference>/<drug>/<action>", is never silenced and so never listed)."""
    from cds_service.builders import BUILDERS
    from hooks.catalog import HOOKS

    app = make_app(ui_enabled=False)  # no [alerts]: every card built is returned, and recorded with its kind
    client, patients, now = app.test_client(), DemoPatients(), datetime.now(timezone.utc)
    for hook in HOOKS:
        for pid in patients.ids:
            fire(client, app, hook, patients, pid, now)
    builders = {b.definition.id: b.definition.builder for b in app.extensions["cds"].all_services()}
    seen = {(r.service_id, r.kind) for r in decisions(app)}
    assert len({sid for sid, _ in seen}) >= 6 and all(r.outcome == "shown" for r in decisions(app))
    undeclared = [(sid, kind) for sid, kind in seen
                  if kind not in BUILDERS[builders[sid]].kinds and not re.match(r"^[A-Z][A-Za-z]+/[^/]+/", kind)]
    assert undeclared == [], sorted(undeclared)


def test_cli_validate_marks_a_service_in_shadow_mode(make_app, tmp_path, monkeypatch, capsys):
    hooks_dir = services_dir(tmp_path, ascvd_with('mode = "shadow"'), alerts=True)
    for name, value in {"CDS_HOOKS_DIR": hooks_dir, "CDS_AUTH_REQUIRED": "false",
                        "CDS_DATABASE_URL": f"sqlite:///{tmp_path}/v.sqlite3"}.items():
        monkeypatch.setenv(name, value)
    assert cli_main(["validate"]) == 0
    assert re.search(r"^ascvd-10y-risk\s+patient-view\s+pce-goff-2013 \S+\s+SHADOW MODE", capsys.readouterr().out, re.M)


def test_a_caller_that_asks_is_told_which_control_held_each_card_back(make_app):
    """`org.cdsml.no-card-reason` (what `cds-service fire` asks for): a call whose cards were all held back
    says by which control; an EHR that does not ask gets `{"cards": []}` only."""
    app = alerts_app(make_app, 'repeat_window_s = { warning = 3600 }\nsilent_info = ["risk"]')
    call(app, HIGH)
    clock(app).advance(600)
    asking = {**hook_request(prefetch=HIGH), "hookInstance": str(uuid.uuid4()), "extension": {"org.cdsml.no-card-reason": True}}
    body = app.test_client().post(URL, json=asking).get_json()
    (reason,) = body["extension"]["org.cdsml.no-card-reason"]["reasons"]
    assert body["cards"] == [] and reason["outcome"] == "repeat"
    assert reason["text"].startswith('"High 10-year ASCVD risk') and "shown to this user for this patient 10 min ago" in reason["text"]
    assert "not repeated within 1 h (alerts.repeat_window_s.warning)" in reason["text"]
    silent = app.test_client().post(URL, json={**asking, "prefetch": LOW, "hookInstance": str(uuid.uuid4())}).get_json()
    assert "suggests nothing to do is not shown (alerts.silent_info: risk)" in silent["extension"]["org.cdsml.no-card-reason"]["reasons"][0]["text"]
    assert app.test_client().post(URL, json={**hook_request(prefetch=HIGH), "hookInstance": str(uuid.uuid4())}).get_json() == {"cards": []}
