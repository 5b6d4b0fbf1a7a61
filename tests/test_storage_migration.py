"""A database written by the schema before tenant isolation is brought up to date when
the service starts, on SQLite and on PostgreSQL (a real server on 127.0.0.1, as in the scale-out tests).

The old schema is copied below from `cds_service/storage/db.py` as it was before the change: feedback
without a client, `cards_issued` keyed by the card uuid alone, explanations keyed by (service,
hookInstance) and SMART launches without the client. After the start: old feedback and issued cards
belong to the client '' (what authentication off records), so the report still counts them and an
auth-off deployment still takes feedback on its old cards; the short-lived explanations and launches
are dropped (their pages and launches simply expire).
"""
from __future__ import annotations

import time

import pytest
from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    inspect,
    select,
)

from cds_service.storage import db
from cds_testing.db_servers import postgres_bin, postgres_server
from cds_testing.optional import missing, require_module

# ---- the previous schema (storage/db.py before tenant isolation) ----------------------------------
old = MetaData()
Table("feedback", old,
      Column("id", Integer, primary_key=True, autoincrement=True),
      Column("dedupe_key", String(64), nullable=False),
      Column("service_id", String(64), nullable=False),
      Column("card_uuid", String(64), nullable=False),
      Column("outcome", String(16), nullable=False),
      Column("outcome_timestamp", String(40), nullable=False),
      Column("accepted_suggestions", Text),
      Column("override_system", String(200)),
      Column("override_code", String(100)),
      Column("override_display", String(300)),
      Column("override_comment", Text),
      Column("received_at", Float, nullable=False),
      UniqueConstraint("dedupe_key", name="uq_feedback_dedupe"))
Table("cards_issued", old,
      Column("card_uuid", String(64), primary_key=True),
      Column("service_id", String(64), nullable=False),
      Column("hook_instance", String(100), nullable=False),
      Column("model", String(100)),
      Column("model_version", String(40)),
      Column("indicator", String(16), nullable=False),
      Column("issued_at", Float, nullable=False))
Table("audit", old,
      Column("id", Integer, primary_key=True, autoincrement=True),
      Column("at", Float, nullable=False),
      Column("iss", String(500)),
      Column("sub", String(500)),
      Column("tenant", String(200)),
      Column("endpoint", String(32), nullable=False),
      Column("service_id", String(64)),
      Column("hook", String(64)),
      Column("hook_instance", String(100)),
      Column("patient_hash", String(64)),
      Column("status", Integer, nullable=False),
      Column("outcome", String(64), nullable=False),
      Column("latency_ms", Float, nullable=False))
Table("jti_seen", old,
      Column("key", String(128), primary_key=True),
      Column("expires_at", Float, nullable=False))
Table("explanations", old,
      Column("service_id", String(64), primary_key=True),
      Column("hook_instance", String(100), primary_key=True),
      Column("created_at", Float, nullable=False, index=True),
      Column("payload", Text, nullable=False))
Table("smart_launches", old,
      Column("state_key", String(64), primary_key=True),
      Column("created_at", Float, nullable=False, index=True),
      Column("iss", String(2048), nullable=False),
      Column("client_id", String(500), nullable=False),
      Column("token_endpoint", String(2048), nullable=False),
      Column("redirect_uri", String(2048), nullable=False),
      Column("code_verifier", String(128), nullable=False))

SERVICE = "ascvd-10y-risk"
NOW = time.time()
OLD_ROWS = {
    "cards_issued": [{"card_uuid": f"card-{i}", "service_id": SERVICE, "hook_instance": "h-old", "model": "pce-goff-2013",
                      "model_version": "2013.1", "indicator": "warning", "issued_at": NOW - 3600} for i in (1, 2)],
    "feedback": [{"dedupe_key": "k1", "service_id": SERVICE, "card_uuid": "card-1", "outcome": "overridden",
                  "outcome_timestamp": "2026-01-01T10:00:00Z", "override_system": "s", "override_code": "c",
                  "received_at": NOW - 60}],
    "audit": [{"at": NOW, "iss": "https://ehr.example", "endpoint": "service", "status": 200, "outcome": "ok",
               "latency_ms": 3.0}],
    "jti_seen": [{"key": "j" * 64, "expires_at": NOW + 300}],
    "explanations": [{"service_id": SERVICE, "hook_instance": "h-old", "created_at": NOW, "payload": "{}"}],
    "smart_launches": [{"state_key": "s" * 64, "created_at": NOW, "iss": "https://ehr.example/fhir", "client_id": "c",
                        "token_endpoint": "https://ehr.example/token", "redirect_uri": "https://cds.example.org/cb",
                        "code_verifier": "v" * 64}],
}


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    if postgres_bin() is None:
        missing("PostgreSQL (initdb) not installed (tests/setup.d/40-postgres-redis.sh installs it)")
    require_module("psycopg", "the [postgres] extra")
    with postgres_server(tmp_path_factory.mktemp("pg-logs")) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def old_database(request, tmp_path) -> str:
    """The URL of a database holding the previous schema and a row in each table."""
    url = f"sqlite:///{tmp_path}/old.sqlite3" if request.param == "sqlite" else request.getfixturevalue("postgres")
    engine = create_engine(url)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":  # one cluster per module: start from an empty schema
            for name in (*old.tables, "issued_cards"):
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
        old.create_all(conn)
        for name, rows in OLD_ROWS.items():
            conn.execute(old.tables[name].insert(), rows)
    engine.dispose()
    return url


def _rows(engine, table) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table))]


def test_the_previous_schema_is_migrated_at_start(make_app, old_database):
    app = make_app(database_url=old_database)
    engine = app.extensions["cds"].engine
    assert "cards_issued" not in inspect(engine).get_table_names()
    issued = sorted(_rows(engine, db.cards_issued), key=lambda r: r["card_uuid"])
    assert [(r["iss"], r["tenant"], r["card_uuid"], r["model"]) for r in issued] == [
        ("", "", "card-1", "pce-goff-2013"), ("", "", "card-2", "pce-goff-2013")]
    (fb,) = _rows(engine, db.feedback)
    assert (fb["iss"], fb["tenant"], fb["card_uuid"], fb["override_code"]) == ("", "", "card-1", "c")
    assert len(_rows(engine, db.audit)) == 1 and len(_rows(engine, db.jti_seen)) == 1
    assert _rows(engine, db.explanations) == [] and _rows(engine, db.smart_launches) == []
    assert {"iss", "tenant"} <= {c["name"] for c in inspect(engine).get_columns("explanations")}
    assert "client_iss" in {c["name"] for c in inspect(engine).get_columns("smart_launches")}

    # The app works on the migrated database: feedback on an old card (client '': auth off here) is
    # taken and counted with the old report; a card never issued is still refused.
    client = app.test_client()
    item = {"card": "card-2", "outcome": "overridden", "outcomeTimestamp": "2026-01-02T10:00:00Z"}
    assert client.post(f"/cds-services/{SERVICE}/feedback", json={"feedback": [item]}).status_code == 200
    unknown = dict(item, card="card-9")
    assert client.post(f"/cds-services/{SERVICE}/feedback", json={"feedback": [unknown]}).status_code == 404
    from cds_service.storage.analytics import feedback_report

    (group,) = feedback_report(engine)
    assert (group["iss"], group["cards_issued"], group["overridden"]) == ("", 2, 2)
    # A second start finds nothing left to migrate.
    again = make_app(database_url=old_database).extensions["cds"].engine
    assert len(_rows(again, db.cards_issued)) == 2 and len(_rows(again, db.feedback)) == 2
