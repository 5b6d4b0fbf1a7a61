"""Feedback analytics: how often each service's cards are accepted or overridden, and why,
per client (tenant isolation: one EHR's clinicians and cards are never mixed with another's).

Feedback (FEEDBACK-2) names a card by its uuid; `issued_cards` says which client got that uuid from
which service, model and model version. Joining the two on (client, uuid) gives rates per client,
service and model version.

Counting rules (FEEDBACK-3: a card may be reported several times):
- a card counts once as `accepted` if any report accepted it, once as `overridden` if any report
  overrode it (a card reported both ways counts in both);
- rates are over the cards issued; cards nobody reported on are the ignored ones (FEEDBACK-3);
- an override reason counts once per card; free-text comments are counted, never shown (they may
  name a patient);
- feedback is accepted only for cards issued to the same client, so feedback without an issued card
  exists only from before that rule (client ''); it is reported under model "unknown".
Used by the `/analytics` page and by `cds-service feedback-report`.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, distinct, func, select, true
from sqlalchemy.engine import Engine

from cds_service.storage import db

UNKNOWN = "unknown"


def feedback_report(engine: Engine, *, since: float | None = None,
                    client: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    """One dict per (iss, tenant, service_id, model, model_version), sorted; cards issued at or after
    `since` (epoch s) only; one client's groups only when `client` is given."""
    c, f = db.cards_issued, db.feedback
    issued_filter = and_(c.c.issued_at >= since if since is not None else true(),
                         and_(c.c.iss == client[0], c.c.tenant == client[1]) if client is not None else true())
    groups: dict[tuple, dict[str, Any]] = {}

    def group(iss, tenant, service_id, model, version) -> dict[str, Any]:
        key = (iss, tenant, service_id, model or UNKNOWN, version or UNKNOWN)
        if key not in groups:
            groups[key] = {"iss": key[0], "tenant": key[1], "service_id": key[2], "model": key[3],
                           "model_version": key[4], "cards_issued": 0, "cards_with_feedback": 0, "accepted": 0,
                           "overridden": 0, "override_reasons": [], "override_comments": 0}
        return groups[key]

    keys = (c.c.iss, c.c.tenant, c.c.service_id, c.c.model, c.c.model_version)
    accepted = func.count(distinct(case((f.c.outcome == "accepted", c.c.card_uuid))))
    overridden = func.count(distinct(case((f.c.outcome == "overridden", c.c.card_uuid))))
    with engine.connect() as conn:
        for row in conn.execute(select(*keys, func.count().label("n")).where(issued_filter).group_by(*keys)):
            group(*row[:5])["cards_issued"] = row.n

        joined = c.join(f, and_(f.c.iss == c.c.iss, f.c.tenant == c.c.tenant, f.c.card_uuid == c.c.card_uuid))
        for row in conn.execute(select(*keys, func.count(distinct(c.c.card_uuid)).label("with_feedback"),
                                       accepted.label("accepted"), overridden.label("overridden"),
                                       func.count(distinct(case((f.c.override_comment.is_not(None), f.c.id)))).label("comments"))
                                .select_from(joined).where(issued_filter).group_by(*keys)):
            entry = group(*row[:5])
            entry.update(cards_with_feedback=row.with_feedback, accepted=row.accepted, overridden=row.overridden,
                         override_comments=row.comments)

        for row in conn.execute(select(*keys, f.c.override_system, f.c.override_code,
                                       func.max(f.c.override_display).label("display"),
                                       func.count(distinct(c.c.card_uuid)).label("n"))
                                .select_from(joined)
                                .where(and_(issued_filter, f.c.outcome == "overridden", f.c.override_code.is_not(None)))
                                .group_by(*keys, f.c.override_system, f.c.override_code)):
            group(*row[:5])["override_reasons"].append(
                {"system": row.override_system, "code": row.override_code, "display": row.display, "cards": row.n})

        if since is None:  # feedback stored before it had to name an issued card (its issue time is unknown)
            orphan = f.outerjoin(c, and_(f.c.iss == c.c.iss, f.c.tenant == c.c.tenant, f.c.card_uuid == c.c.card_uuid))
            scope = and_(f.c.iss == client[0], f.c.tenant == client[1]) if client is not None else true()
            for row in conn.execute(select(f.c.iss, f.c.tenant, f.c.service_id,
                                           func.count(distinct(f.c.card_uuid)).label("cards"),
                                           func.count(distinct(case((f.c.outcome == "accepted", f.c.card_uuid)))).label("accepted"),
                                           func.count(distinct(case((f.c.outcome == "overridden", f.c.card_uuid)))).label("overridden"))
                                    .select_from(orphan).where(and_(c.c.card_uuid.is_(None), scope))
                                    .group_by(f.c.iss, f.c.tenant, f.c.service_id)):
                entry = group(row.iss, row.tenant, row.service_id, None, None)
                entry.update(cards_with_feedback=row.cards, accepted=row.accepted, overridden=row.overridden)

    out = []
    for entry in sorted(groups.values(), key=lambda e: (e["iss"], e["tenant"], e["service_id"], e["model"],
                                                        e["model_version"])):
        issued = entry["cards_issued"]
        entry["acceptance_rate"] = entry["accepted"] / issued if issued else None
        entry["override_rate"] = entry["overridden"] / issued if issued else None
        entry["override_reasons"].sort(key=lambda r: (-r["cards"], r["code"]))
        out.append(entry)
    return out
