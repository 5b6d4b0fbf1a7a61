"""Feedback stored durably; a report already stored is skipped, so duplicates are tolerated (FEEDBACK-3).
The request is validated first, in `cds_service/feedback_request.py` (FEEDBACK-2..4)."""
from __future__ import annotations

import hashlib
import json
import time

from sqlalchemy.engine import Engine

from cds_service.feedback_request import FeedbackItem
from cds_service.storage import db


def store_feedback(engine: Engine, service_id: str, items: list[FeedbackItem]) -> int:
    """Insert the items in one transaction; a report already stored is skipped. Returns new rows."""
    now = time.time()
    rows = []
    for it in items:
        canonical = json.dumps([service_id, it.card, it.outcome, it.outcome_timestamp, sorted(it.accepted_suggestions),
                                it.override_reason, it.override_comment], sort_keys=True)
        rows.append({
            "dedupe_key": hashlib.sha256(canonical.encode()).hexdigest(),
            "service_id": service_id, "card_uuid": it.card, "outcome": it.outcome,
            "outcome_timestamp": it.outcome_timestamp,
            "accepted_suggestions": json.dumps(list(it.accepted_suggestions)) if it.accepted_suggestions else None,
            "override_system": it.override_reason[0] if it.override_reason else None,
            "override_code": it.override_reason[1] if it.override_reason else None,
            "override_display": (it.override_reason[2] or None) if it.override_reason else None,
            "override_comment": it.override_comment, "received_at": now,
        })
    return db.insert_ignoring_duplicates(engine, db.feedback, rows)
