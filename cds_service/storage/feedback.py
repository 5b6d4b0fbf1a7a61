"""Feedback stored durably, for cards issued to the same client only; a report already stored is
skipped, so duplicates are tolerated (FEEDBACK-3). The request is validated first, in
`cds_service/feedback_request.py` (FEEDBACK-2..4).

A card uuid names a card only within the client it was issued to (`issued_cards` is keyed by the
client): feedback naming a card this client was never issued by this service is refused as a whole
(404) and counted nowhere, so one EHR cannot report on, or pad the analytics of, another's cards.
"""
from __future__ import annotations

import hashlib
import json
import time

from sqlalchemy import select
from sqlalchemy.engine import Engine

from cds_service.errors import UnknownCard
from cds_service.feedback_request import FeedbackItem
from cds_service.storage import db

RECHECK_S = 0.02  # a worker commits its queued rows within a few milliseconds


def store_feedback(engine: Engine, service_id: str, client: tuple[str, str], items: list[FeedbackItem],
                   wait_s: float = 0.0) -> int:
    """Insert the items in one transaction; a report already stored is skipped. Returns new rows.
    Raises UnknownCard when an item names a card not issued to `client` by `service_id`.

    `wait_s`: how long to look again for a card not found yet — another worker may have answered the
    call a moment ago and not committed its rows yet (`call_writes = "after-answer"`)."""
    iss, tenant = client
    now = time.time()
    rows = []
    for it in items:
        canonical = json.dumps([iss, tenant, service_id, it.card, it.outcome, it.outcome_timestamp,
                                sorted(it.accepted_suggestions), it.override_reason, it.override_comment], sort_keys=True)
        rows.append({
            "iss": iss, "tenant": tenant,
            "dedupe_key": hashlib.sha256(canonical.encode()).hexdigest(),
            "service_id": service_id, "card_uuid": it.card, "outcome": it.outcome,
            "outcome_timestamp": it.outcome_timestamp,
            "accepted_suggestions": json.dumps(list(it.accepted_suggestions)) if it.accepted_suggestions else None,
            "override_system": it.override_reason[0] if it.override_reason else None,
            "override_code": it.override_reason[1] if it.override_reason else None,
            "override_display": (it.override_reason[2] or None) if it.override_reason else None,
            "override_comment": it.override_comment, "received_at": now,
        })
    c = db.cards_issued
    wanted, deadline = {it.card for it in items}, time.monotonic() + wait_s
    while True:
        with engine.connect() as conn:
            issued = set(conn.execute(select(c.c.card_uuid).where(
                c.c.iss == iss, c.c.tenant == tenant, c.c.service_id == service_id, c.c.card_uuid.in_(wanted))).scalars())
        if issued >= wanted or time.monotonic() >= deadline:
            break
        time.sleep(RECHECK_S)
    for i, it in enumerate(items):
        if it.card not in issued:
            raise UnknownCard(f"feedback[{i}].card names no card this service issued to this client.",
                              expression=f"feedback[{i}].card")
    return db.insert_ignoring_duplicates(engine, db.feedback, rows)
