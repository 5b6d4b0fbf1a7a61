"""The service's database: SQLite by default, PostgreSQL when the URL says so (SQLAlchemy Core).

Tables: `feedback` (FEEDBACK-2, duplicates tolerated by a unique key), `issued_cards` (which model
version produced which card, for analytics; no patient data), `audit` (one row per call),
`jti_seen` (JWT replay cache shared by every worker, SEC-8), `explanations` and `smart_launches`,
`card_decisions` and `snoozes` (the alert controls' history, `storage/card_history.py`).

Tenant isolation: every row a call leaves carries the calling client, `iss` (the JWT issuer; '' with
authentication off) and `tenant` (the JWT's `tenant` claim; '' when absent), and every lookup is scoped
by both. A hookInstance or card uuid is only unique within one client: two EHRs may send the same one.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    exc,
    inspect,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

metadata = MetaData()

ISS_CHARS, TENANT_CHARS = 500, 200  # widths of the client columns


def _client_columns() -> tuple[Column, Column]:
    return (Column("iss", String(ISS_CHARS), nullable=False, server_default=""),
            Column("tenant", String(TENANT_CHARS), nullable=False, server_default=""))


feedback = Table(
    "feedback", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    *_client_columns(),
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
    "issued_cards", metadata,  # `cards_issued` before tenant isolation (migrated by `_migrate`)
    Column("iss", String(ISS_CHARS), primary_key=True),
    Column("tenant", String(TENANT_CHARS), primary_key=True),
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

# What the explanation page of one call shows: scores, inputs and model, no names or
# identifiers; purged after `ui_explain_ttl_s` (see explain_store).
explanations = Table(
    "explanations", metadata,
    Column("iss", String(ISS_CHARS), primary_key=True),
    Column("tenant", String(TENANT_CHARS), primary_key=True),
    Column("service_id", String(64), primary_key=True),
    Column("hook_instance", String(100), primary_key=True),
    Column("created_at", Float, nullable=False, index=True),
    Column("payload", Text, nullable=False),  # JSON
)

# SMART launches in progress (smart_state): one row per `state`, deleted when the callback
# uses it or after `smart_launch_ttl_s`. Any worker may receive the callback, hence the database.
smart_launches = Table(
    "smart_launches", metadata,
    Column("state_key", String(64), primary_key=True),  # sha256(state): the row alone cannot finish a launch
    Column("created_at", Float, nullable=False, index=True),
    Column("iss", String(2048), nullable=False),  # the launching EHR's FHIR base URL (SMART's `iss`)
    Column("client_iss", String(ISS_CHARS), nullable=False),  # the configured client it belongs to ('' auth off)
    Column("client_id", String(500), nullable=False),
    Column("token_endpoint", String(2048), nullable=False),
    Column("redirect_uri", String(2048), nullable=False),
    Column("code_verifier", String(128), nullable=False),
)


# What became of each card a service built (shown, or held back and why), live or in shadow mode: the
# history the alert controls judge repeats against, and what the shadow report reads. The patient and the
# user only as salted hashes (storage/audit.PatientHasher); purged after `alert_history_days`.
card_decisions = Table(
    "card_decisions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    *_client_columns(),
    Column("service_id", String(64), nullable=False),
    Column("history", String(64), nullable=False),  # [alerts] history: the service id, or the one it shares
    Column("hook", String(64), nullable=False),
    Column("hook_instance", String(100), nullable=False),
    Column("card_uuid", String(64), nullable=False),
    Column("patient_hash", String(64), nullable=False),
    Column("user_hash", String(64), nullable=False),
    Column("kind", String(200), nullable=False),  # cards.Card.kind
    Column("content_key", String(64), nullable=False),  # alerts.content_key
    Column("actions_key", String(64), nullable=False),  # alerts.actions_key
    Column("indicator", String(16), nullable=False),
    Column("summary", String(300), nullable=False),
    Column("model", String(100)),
    Column("model_version", String(40)),
    Column("mode", String(8), nullable=False),  # live | shadow
    Column("outcome", String(8), nullable=False),  # shown | repeat | snoozed | silent
    Column("at", Float, nullable=False),
    UniqueConstraint("iss", "tenant", "card_uuid", name="uq_card_decisions_card"),  # a retried call adds no row
    # The repeat lookup of every call (storage/card_history.py): this user's cards for this patient, so a
    # patient many users opened costs no more than one opened once.
    Index("ix_card_decisions_seen", "iss", "tenant", "history", "patient_hash", "user_hash", "at"),
)

# Snoozes set by feedback (an override with one of the service's `snooze_reasons`): the card kind is
# silenced for the patient until `until` unless a card is more severe or suggests other actions.
snoozes = Table(
    "snoozes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    *_client_columns(),
    Column("service_id", String(64), nullable=False),
    Column("patient_hash", String(64), nullable=False),
    Column("kind", String(200), nullable=False),
    Column("indicator", String(16), nullable=False),
    Column("actions_key", String(64), nullable=False),
    Column("card_uuid", String(64), nullable=False),  # the overridden card
    Column("reason", String(301), nullable=False),  # system|code
    Column("created_at", Float, nullable=False),
    Column("until", Float, nullable=False),
    UniqueConstraint("iss", "tenant", "card_uuid", name="uq_snoozes_card"),  # feedback repeated (FEEDBACK-3) extends nothing
    Index("ix_snoozes_patient", "iss", "tenant", "service_id", "patient_hash", "until"),
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
    # A pooled PostgreSQL connection may have been closed by the server (restart, idle timeout): it is pinged
    # at checkout. A SQLite connection is a file this process holds open; the ping would be a query per call.
    engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"), future=True)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn, _record):  # durability with concurrent workers
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sqlite_synchronous}")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()
    _guard_against_fork(engine)
    _migrate(engine)
    engine.dispose()  # the master keeps no connection open while gunicorn forks the workers
    return engine


def _migrate(engine: Engine) -> None:
    """Create the tables; bring a database of the schema before tenant isolation up to date.

    `feedback` gains the client columns (old rows: client ''); `cards_issued` is copied into
    `issued_cards` (whose key includes the client) and dropped; the short-lived `explanations` and
    `smart_launches` of the old schema are dropped and recreated (pages then open as expired).
    `card_decisions`' index by patient alone is replaced by the one by patient and user (`create_all`
    creates the indexes of new tables only).
    """
    tables = set(inspect(engine).get_table_names())

    def columns(name: str) -> set[str]:
        return {c["name"] for c in inspect(engine).get_columns(name)}

    with engine.begin() as conn:
        if "feedback" in tables and "iss" not in columns("feedback"):
            for name, width in (("iss", ISS_CHARS), ("tenant", TENANT_CHARS)):
                conn.execute(text(f"ALTER TABLE feedback ADD COLUMN {name} VARCHAR({width}) NOT NULL DEFAULT ''"))
        for name, marker in (("explanations", "iss"), ("smart_launches", "client_iss")):
            if name in tables and marker not in columns(name):
                conn.execute(text(f"DROP TABLE {name}"))
    metadata.create_all(engine)
    if "card_decisions" in tables:
        with engine.begin() as conn:
            conn.execute(text("DROP INDEX IF EXISTS ix_card_decisions_patient"))
            for index in card_decisions.indexes:
                index.create(conn, checkfirst=True)
    if "cards_issued" in tables:
        names = [c.name for c in cards_issued.columns if c.name not in ("iss", "tenant")]
        with engine.begin() as conn:
            conn.execute(text(f"INSERT INTO issued_cards (iss, tenant, {', '.join(names)}) "
                              f"SELECT '', '', {', '.join(names)} FROM cards_issued"))
            conn.execute(text("DROP TABLE cards_issued"))


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


@lru_cache(maxsize=64)
def insert_ignoring_statement(dialect_name: str, table: Table):
    """INSERT … ON CONFLICT DO NOTHING for this database (one object per table: the call writer runs it
    once for all the calls of a transaction)."""
    return insert_statement(dialect_name, table).on_conflict_do_nothing()


@lru_cache(maxsize=64)
def insert_statement_of(table: Table):
    """A plain INSERT of `table`, one object per table (see insert_ignoring_statement)."""
    return table.insert()


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


class CompiledQuery:
    """A SELECT compiled once for the engine's dialect and run on a DBAPI cursor: for a query of every call,
    where SQLAlchemy's per-execution work (cache key, execution context, result wrapping) costs more than the
    indexed lookup itself. `statement` names its parameters with `bindparam`; `rows` returns plain tuples."""

    def __init__(self, engine: Engine, statement):
        compiled = statement.compile(dialect=engine.dialect)
        self.sql = compiled.string
        self._order = tuple(compiled.positiontup) if engine.dialect.positional else None
        # The values of the statement's literals (`outcome == "shown"`), worked out once rather than by
        # `construct_params` per execution; the `bindparam`s without a value must be given to every `rows`.
        self._literals = compiled.construct_params(_check=False)
        self._required = frozenset(b.key for b in compiled.binds.values() if b.required)

    def _args(self, params: dict):
        if not self._required <= params.keys():
            raise exc.ArgumentError(f"missing query parameters: {sorted(self._required - params.keys())}")
        values = {**self._literals, **params}
        return tuple(values[name] for name in self._order) if self._order is not None else values

    def rows(self, dbapi_connection, params: dict) -> list[tuple]:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(self.sql, self._args(params))
            return cursor.fetchall()
        finally:
            cursor.close()


def ping(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:  # any driver error means "not reachable" for readiness
        return False
