"""The alert controls' memory: what became of every card a service built (`db.card_decisions`: shown,
or held back as a repeat, snoozed or silent; live or in shadow mode) and the snoozes feedback set
(`db.snoozes`). `CardHistory.screen` applies a service's `[alerts]` to one call's cards
(`cds_service.alerts.decide`) and queues the decisions with the call's other rows.

Per client: every row carries the calling client (iss, tenant) and every lookup is scoped by it, as
everywhere in the database (db.py). The patient and the user are stored only as salted hashes (the
audit's `PatientHasher`): without `audit_salt` the salt is random per process, so repeats are
recognised only until a restart (cards are then shown again, never hidden longer).

A retried call (the same hookInstance) is judged against the same history as its first attempt, so it
gets the same answer (IDEM-1); its rows are not stored twice.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from dataclasses import replace
from typing import Callable, Iterable, Mapping

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.engine import Engine

from cds_service.alerts import SHOWN, Decision, History, Snooze, decide, kind_of, longest_window_s
from cds_service.cards import CdsResponse
from cds_service.feedback_request import FeedbackItem
from cds_service.hook_request import HookRequest
from cds_service.no_card import explain_held_back
from cds_service.storage import db
from cds_service.storage.call_writes import queue_rows
from cds_service.wire_text import clipped
from hooks import ServiceFileError
from hooks.definitions import AlertPolicy, ServiceDefinition

log = logging.getLogger("cds_service.storage.card_history")

SHADOW = "shadow"  # the held-back count of cards a shadow-mode service would have shown
PURGE_EVERY_S = 300.0
SUMMARY_CHARS = 300


class CardHistory:
    """Built once per app (`create_app`); `clock` is replaceable (tests)."""

    def __init__(self, engine: Engine, hasher: Callable[[str | None], str | None], *, keep_s: float,
                 clock: Callable[[], float] = time.time):
        self.engine, self.hasher, self.keep_s, self.clock = engine, hasher, keep_s, clock
        self._next_purge = 0.0
        self._readers = threading.local() if engine.dialect.name == "sqlite" else None  # see _reader
        # The two lookups of every call, compiled once (db.CompiledQuery).
        t, s = db.card_decisions, db.snoozes
        self._shown_query = db.CompiledQuery(engine, select(t.c.content_key, func.max(t.c.at))
            .where(t.c.iss == bindparam("iss"), t.c.tenant == bindparam("tenant"), t.c.history == bindparam("scope"),
                   t.c.patient_hash == bindparam("patient"), t.c.user_hash == bindparam("user"),
                   t.c.mode == bindparam("mode"), t.c.outcome == SHOWN, t.c.at >= bindparam("since"),
                   t.c.hook_instance != bindparam("hook_instance"))
            .group_by(t.c.content_key))
        self._snooze_query = db.CompiledQuery(engine, select(s.c.kind, s.c.indicator, s.c.actions_key, s.c.until).where(
            s.c.iss == bindparam("iss"), s.c.tenant == bindparam("tenant"), s.c.service_id == bindparam("service_id"),
            s.c.patient_hash == bindparam("patient"), s.c.until > bindparam("now")))

    def screen(self, service: ServiceDefinition, client: tuple[str, str], request: HookRequest, response: CdsResponse,
               model: tuple[str | None, str | None] = (None, None)) -> tuple[CdsResponse, Counter]:
        """The response the clinician gets under the service's `[alerts]`, and how many cards were held back
        by reason ("repeat", "snoozed", "silent"; "shadow": would have been shown). Queues one row per card built."""
        policy = service.alerts
        scope = policy.history or service.id
        now = self.clock()
        user_id = request.context.get("userId")
        patient, user = self.hasher(request.patient_id) or "", self.hasher(str(user_id) if user_id else None) or ""
        history = self._history(service.id, scope, policy, client, patient, user, request.hook_instance, now)
        decisions = decide(policy, scope, response.cards, history, now)
        if decisions:
            rows = [_row(d, client, service, scope, request.hook_instance, patient, user, model, now) for d in decisions]
            queue_rows(db.insert_ignoring_statement(self.engine.dialect.name, db.card_decisions), rows)  # with the call's other rows
        self._purge_now_and_then(now)
        held = Counter(d.outcome for d in decisions if not d.shown)
        shown = tuple(d.card for d in decisions if d.shown)
        if policy.mode == SHADOW:
            held[SHADOW] += len(shown)
            shown = ()
        if decisions and not shown and request.wants_no_card_reason:  # why, for a caller that asked (no_card.py)
            return replace(response, cards=(), extension=explain_held_back(service, decisions, now)), held
        return replace(response, cards=shown), held

    def _history(self, service_id: str, scope: str, policy: AlertPolicy, client: tuple[str, str], patient: str, user: str,
                 hook_instance: str, now: float) -> History:
        """The cards shown in `scope` (this user, patient and client; in the policy's mode) within the longest
        window, and the patient's snoozes of this service."""
        longest = longest_window_s(policy)
        if not longest and not policy.snooze_reasons:
            return History()
        conn, pooled = self._reader()
        try:
            shown = {}
            if longest:
                shown = dict(self._shown_query.rows(conn, {
                    "iss": client[0], "tenant": client[1], "scope": scope, "patient": patient, "user": user,
                    "mode": policy.mode, "since": now - longest, "hook_instance": hook_instance}))
            snoozes: tuple[Snooze, ...] = ()
            if policy.snooze_reasons:
                snoozes = tuple(Snooze(*r) for r in self._snooze_query.rows(conn, {
                    "iss": client[0], "tenant": client[1], "service_id": service_id, "patient": patient, "now": now}))
        finally:
            if pooled:
                conn.close()  # back to the pool (rolled back: nothing was written)
        return History(shown, snoozes)

    def _reader(self):
        """The connection for the lookups, and whether it came from the pool. SQLite: each thread keeps one of
        its own, out of the pool. Its SELECTs run outside a transaction (the DBAPI's default), so each sees
        every commit so far, as a fresh connection would; a pool checkout and its reset on return cost more
        than the two indexed lookups. PostgreSQL: from the pool, which pings and replaces dead connections."""
        if self._readers is None:
            return self.engine.raw_connection(), True
        kept = getattr(self._readers, "conn", None)
        if kept is None or kept[0] != os.getpid():  # a thread's connection inherited through fork is not used
            detached = self.engine.raw_connection()
            detached.detach()  # closed with the thread (or this history), never returned to the pool
            kept = self._readers.conn = (os.getpid(), detached)
        return kept[1], False

    def snooze(self, service_id: str, policies: Mapping[str, AlertPolicy], client: tuple[str, str],
               items: Iterable[FeedbackItem]) -> int:
        """Set a snooze for each card overridden with one of its service's `snooze_reasons` (`policies`: by
        hook). Returns the snoozes set (a report already received sets none)."""
        reasons = {it.card: f"{it.override_reason[0]}|{it.override_reason[1]}" for it in items
                   if it.outcome == "overridden" and it.override_reason}
        if not reasons:
            return 0
        t, now = db.card_decisions, self.clock()
        with self.engine.connect() as conn:
            cards = conn.execute(select(t.c.card_uuid, t.c.hook, t.c.patient_hash, t.c.kind, t.c.indicator, t.c.actions_key)
                                 .where(t.c.iss == client[0], t.c.tenant == client[1], t.c.service_id == service_id,
                                        t.c.card_uuid.in_(reasons), t.c.mode == "live", t.c.outcome == SHOWN)).all()
        rows = []
        for c in cards:
            policy = policies.get(c.hook)
            if policy is not None and reasons[c.card_uuid] in policy.snooze_reasons:
                rows.append({"iss": client[0], "tenant": client[1], "service_id": service_id, "patient_hash": c.patient_hash,
                             "kind": c.kind, "indicator": c.indicator, "actions_key": c.actions_key, "card_uuid": c.card_uuid,
                             "reason": reasons[c.card_uuid], "created_at": now, "until": now + policy.snooze_days * 86400})
        return db.insert_ignoring_duplicates(self.engine, db.snoozes, rows)

    def _purge_now_and_then(self, now: float) -> None:
        """Delete decisions older than `alert_history_days` and expired snoozes, at most every PURGE_EVERY_S
        per process, in a transaction of its own (see explanations.save_in on purging in the call's)."""
        if now < self._next_purge:
            return
        self._next_purge = now + PURGE_EVERY_S
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(db.card_decisions).where(db.card_decisions.c.at < now - self.keep_s))
                conn.execute(delete(db.snoozes).where(db.snoozes.c.until < now))
        except Exception as exc:  # the next purge retries; the call's answer does not depend on it
            log.warning("card history purge failed", extra={"event": "card_history_purge_failed", "error": type(exc).__name__})


def _row(d: Decision, client, service: ServiceDefinition, scope, hook_instance, patient, user, model, now) -> dict:
    return {"iss": client[0], "tenant": client[1], "service_id": service.id, "history": scope, "hook": service.hook,
            "hook_instance": hook_instance,
            "card_uuid": d.card.uuid, "patient_hash": patient, "user_hash": user, "kind": kind_of(d.card),
            "content_key": d.content_key, "actions_key": d.actions_key, "indicator": d.card.indicator,
            "summary": clipped(d.card.summary, SUMMARY_CHARS), "model": model[0], "model_version": model[1],
            "mode": service.alerts.mode, "outcome": d.outcome, "at": now}


def check_retention(services: Iterable, keep_days: float) -> None:
    """A repeat window longer than the history kept would silently be cut short: stop start-up instead."""
    for bound in services:
        longest = longest_window_s(bound.definition.alerts)
        if longest > keep_days * 86400:
            raise ServiceFileError(bound.definition.path, "alerts.repeat_window_s",
                                   f"{longest} s is longer than the card history kept (alert_history_days = {keep_days:g})")
