"""The service's database: SQLite by default, PostgreSQL when the URL says so (SQLAlchemy Core).

Tables: `feedback` (FEEDBACK-2, duplicates tolerated by a unique key), `cards_issued` (which model
version produced which card, for analytics; no patient data), `audit` (one row per call, issue #6),
`jti_seen` (JWT replay cache shared by every worker, SEC-8), `explanations` and `smart_launches` (issue #7).
"""
from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import (Column, Float, Integer, MetaData, String, Table, Text, UniqueConstraint, create_engine, event,
                        text)
from sqlalchemy import exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

metadata = MetaData()

feedback = Table(
    "feedback", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dedupe_key", String(64), nullable=False),
    Column("service_id", String(64), nullable=False),
    Column("card_uuid", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("outcome_timestamp", String(40), nullable=False),
    Column("accepted_suggestions", Text),  # JSON array of suggestion uuids
    Column("override_system", String(200)),
    Column("override_code", String(100)),
    Column("override_display", String(300)),
    Column("override_comment", Text),
    Column("received_at", Float, nullable=False),
    UniqueConstraint("dedupe_key", name="uq_feedback_dedupe"),
)

cards_issued = Table(
    "cards_issued", metadata,
    Column("card_uuid", String(64), primary_key=True),
    Column("service_id", String(64), nullable=False),
    Column("hook_instance", String(100), nullable=False),
    Column("model", String(100)),
    Column("model_version", String(40)),
    Column("indicator", String(16), nullable=False),
    Column("issued_at", Float, nullable=False),
)

audit = Table(
    "audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("iss", String(500)),
    Column("sub", String(500)),
    Column("tenant", String(200)),
    Column("endpoint", String(32), nullable=False),  # discovery | service | feedback | other
    Column("service_id", String(64)),
    Column("hook", String(64)),
    Column("hook_instance", String(100)),
    Column("patient_hash", String(64)),
    Column("status", Integer, nullable=False),
    Column("outcome", String(64), nullable=False),
    Column("latency_ms", Float, nullable=False),
)

jti_seen = Table(
    "jti_seen", metadata,
    Column("key", String(128), primary_key=True),  # sha256(iss + jti)
    Column("expires_at", Float, nullable=False),
)

# What the explanation page of one call shows (issue #7): scores, inputs and model, no names or
# identifiers; purged after `ui_explain_ttl_s` (see explain_store).
explanations = Table(
    "explanations", metadata,
    Column("service_id", String(64), primary_key=True),
    Column("hook_instance", String(100), primary_key=True),
    Column("created_at", Float, nullable=False, index=True),
    Column("payload", Text, nullable=False),  # JSON
)

# SMART launches in progress (issue #7, smart_state): one row per `state`, deleted when the callback
# uses it or after `smart_launch_ttl_s`. Any worker may receive the callback, hence the database.
smart_launches = Table(
    "smart_launches", metadata,
    Column("state_key", String(64), primary_key=True),  # sha256(state): the row alone cannot finish a launch
    Column("created_at", Float, nullable=False, index=True),
    Column("iss", String(2048), nullable=False),
    Column("client_id", String(500), nullable=False),
    Column("token_endpoint", String(2048), nullable=False),
    Column("redirect_uri", String(2048), nullable=False),
    Column("code_verifier", String(128), nullable=False),
)


def make_engine(url: str, *, sqlite_synchronous: str = "FULL") -> Engine:
    """Create the engine and the tables. SQLite gets WAL and a busy timeout for multi-worker use.

    `sqlite_synchronous`: FULL (default) fsyncs every commit, so a row survives a power loss; NORMAL
    skips that fsync in WAL mode: a commit still survives a crash or SIGKILL of the process, but the
    last commits may be lost on power loss or an OS crash (SQLite's documentation). Measured in
    bench/README.md: the fsync is most of a call's wall time and serialises all workers' writes.
    """
    if sqlite_synchronous not in ("FULL", "NORMAL"):
        raise ValueError("sqlite_synchronous must be FULL or NORMAL")
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_pre_ping=True, future=True)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn, _record):  # durability with concurrent workers
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sqlite_synchronous}")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()
    _guard_against_fork(engine)
    metadata.create_all(engine)
    engine.dispose()  # the master keeps no connection open while gunicorn forks the workers
    return engine


def _guard_against_fork(engine: Engine) -> None:
    """gunicorn forks workers after create_app (preload_app): a pooled connection inherited from the
    master would be one socket shared by several processes, which corrupts both sessions. A connection
    checked out in another process than the one that opened it is discarded and replaced instead
    (the SQLAlchemy documentation's recipe for pools and os.fork())."""

    @event.listens_for(engine, "connect")
    def _remember_pid(_dbapi_conn, record):
        record.info["pid"] = os.getpid()

    @event.listens_for(engine, "checkout")
    def _check_pid(_dbapi_conn, record, proxy):
        if record.info.get("pid") != os.getpid():
            record.dbapi_connection = proxy.dbapi_connection = None
            raise exc.DisconnectionError("connection opened in another process; reconnecting")


def insert_statement(dialect_name: str, table: Table):
    """The dialect's INSERT, which knows ON CONFLICT (PostgreSQL or SQLite)."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return dialect.insert(table)


def insert_ignoring_statement(dialect_name: str, table: Table):
    """INSERT … ON CONFLICT DO NOTHING for this database."""
    return insert_statement(dialect_name, table).on_conflict_do_nothing()


def insert_ignoring_duplicates(engine: Engine, table: Table, rows: list[dict]) -> int:
    """Insert rows, skipping those that violate a unique key; returns how many were new."""
    if not rows:
        return 0
    stmt = insert_ignoring_statement(engine.dialect.name, table)
    with engine.begin() as conn:
        if engine.dialect.insert_executemany_returning:
            # Count the rows actually inserted: psycopg reports rowcount -1 for these statements.
            return len(conn.execute(stmt.returning(*table.primary_key.columns), rows).all())
        result = conn.execute(stmt, rows)
    return max(result.rowcount or 0, 0)


def ping(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:  # any driver error means "not reachable" for readiness
        return False
