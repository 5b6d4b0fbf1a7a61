"""The shadow report: what a service in shadow mode would have shown, per client, and what later became
of the same cards once shown for real. Used by `cds-service shadow-report` and the `/analytics` page.

What it can compare, and what it cannot:
- Counted from the shadow rows (`db.card_decisions`, mode "shadow"): the cards that would have been
  shown, by indicator and kind, in how many calls, for how many patients; and those the service's
  `[alerts]` would have held back (repeat, silent, snoozed).
- Compared: each (patient, card kind) the shadow service would have shown is looked up among the cards
  the same service later showed LIVE to the same client for the same patient and kind (after the switch
  to live, or from a live instance beside it), and the EHR's feedback on those (FEEDBACK-2): accepted
  (one of its suggestions, e.g. an order, was taken), overridden (with the reasons), shown without
  feedback, or never shown live since. Feedback is the only outcome the service sees: orders placed or
  results recorded outside its cards, and feedback an EHR does not send, are invisible to it.
- The patient is known only by its salted hash: with a random salt (no `audit_salt`) rows from before a
  restart cannot be matched to later ones, and the comparison finds nothing.
Nothing here names a patient; summaries are the service's own text, counted.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import and_, select, true
from sqlalchemy.engine import Engine

from cds_service.alerts import SHOWN
from cds_service.storage import db

# A kind about one draft order ("MedicationRequest/abc/metformin/reduce") is reported by what it is about.
_ORDER_REFERENCE = re.compile(r"^[A-Z][A-Za-z]+/[^/]+/")
LATER = ("accepted", "overridden", "no_feedback", "not_shown_live")
TOP_SUMMARIES = 3


def _kind_class(kind: str) -> str:
    return _ORDER_REFERENCE.sub("", kind)


def shadow_report(engine: Engine, *, since: float | None = None, client: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    """One dict per (iss, tenant, service_id) that has shadow rows at or after `since` (epoch s); one
    client's only when `client` is given. Sorted by client and service."""
    t, f = db.card_decisions, db.feedback
    scope = and_(t.c.at >= since if since is not None else true(),
                 and_(t.c.iss == client[0], t.c.tenant == client[1]) if client is not None else true())
    with engine.connect() as conn:
        shadow = conn.execute(select(t.c.iss, t.c.tenant, t.c.service_id, t.c.hook_instance, t.c.patient_hash, t.c.kind,
                                     t.c.indicator, t.c.summary, t.c.model, t.c.model_version, t.c.outcome, t.c.at)
                              .where(scope, t.c.mode == "shadow")).all()
        services = {(r.iss, r.tenant, r.service_id) for r in shadow}
        live = [r for r in conn.execute(select(t.c.iss, t.c.tenant, t.c.service_id, t.c.patient_hash, t.c.kind, t.c.card_uuid,
                                               t.c.at)
                                        .where(t.c.mode == "live", t.c.outcome == SHOWN, t.c.iss.in_({i for i, _, _ in services}),
                                               t.c.service_id.in_({s for _, _, s in services})))
                if (r.iss, r.tenant, r.service_id) in services]
        uuids = {r.card_uuid for r in live}
        feedback = conn.execute(select(f.c.iss, f.c.tenant, f.c.card_uuid, f.c.outcome, f.c.override_system,
                                       f.c.override_code, f.c.override_display)
                                .where(f.c.card_uuid.in_(uuids))).all() if uuids else []

    reports: dict[tuple, dict[str, Any]] = {}
    for key in sorted(services):
        reports[key] = {"iss": key[0], "tenant": key[1], "service_id": key[2], "first_at": None, "last_at": None,
                        "models": set(), "calls": set(), "patients": set(), "would_show": 0, "by_indicator": Counter(),
                        "held_back": Counter(), "kinds": defaultdict(lambda: {"cards": 0, "indicators": Counter(), "summaries": Counter()}),
                        "first_shown": {}}
    for r in shadow:
        rep = reports[(r.iss, r.tenant, r.service_id)]
        rep["first_at"] = r.at if rep["first_at"] is None else min(rep["first_at"], r.at)
        rep["last_at"] = r.at if rep["last_at"] is None else max(rep["last_at"], r.at)
        if r.outcome != SHOWN:
            rep["held_back"][r.outcome] += 1
            continue
        rep["would_show"] += 1
        rep["by_indicator"][r.indicator] += 1
        rep["calls"].add(r.hook_instance)
        rep["patients"].add(r.patient_hash)
        rep["models"].add(f"{r.model} {r.model_version}" if r.model else "(no model)")
        kind = rep["kinds"][_kind_class(r.kind)]
        kind["cards"] += 1
        kind["indicators"][r.indicator] += 1
        kind["summaries"][r.summary] += 1
        pair = (r.patient_hash, r.kind)
        rep["first_shown"][pair] = min(rep["first_shown"].get(pair, r.at), r.at)
    return [_compare(rep, live, feedback) for rep in reports.values()]


def _compare(rep: dict[str, Any], live, feedback) -> dict[str, Any]:
    """Each (patient, kind) the shadow service would have shown, against the same service's later live cards."""
    key = (rep["iss"], rep["tenant"], rep["service_id"])
    later_live: dict[tuple, list] = defaultdict(list)
    for r in live:
        if (r.iss, r.tenant, r.service_id) == key:
            later_live[(r.patient_hash, r.kind)].append(r)
    answers: dict[str, list] = defaultdict(list)
    for r in feedback:
        if (r.iss, r.tenant) == key[:2]:
            answers[r.card_uuid].append(r)
    later, reasons = Counter({k: 0 for k in LATER}), Counter[tuple[str, str]]()
    displays: dict[tuple, str] = {}
    for pair, first in rep["first_shown"].items():
        cards = [c for c in later_live.get(pair, ()) if c.at > first]
        if not cards:
            later["not_shown_live"] += 1
            continue
        reports = [a for c in cards for a in answers.get(c.card_uuid, ())]
        if any(a.outcome == "accepted" for a in reports):
            later["accepted"] += 1
        elif any(a.outcome == "overridden" for a in reports):
            later["overridden"] += 1
            for a in {(a.override_system, a.override_code, a.override_display) for a in reports if a.override_code}:
                reasons[a[:2]] += 1
                displays[a[:2]] = a[2] or a[1]
        else:
            later["no_feedback"] += 1
    kinds = [{"kind": k, "cards": v["cards"], "by_indicator": dict(v["indicators"]),
              "summaries": [{"summary": s, "cards": n} for s, n in v["summaries"].most_common(TOP_SUMMARIES)]}
             for k, v in sorted(rep["kinds"].items(), key=lambda kv: (-kv[1]["cards"], kv[0]))]
    return {
        "iss": rep["iss"], "tenant": rep["tenant"], "service_id": rep["service_id"],
        "first_at": rep["first_at"], "last_at": rep["last_at"], "models": sorted(rep["models"]),
        "calls_with_cards": len(rep["calls"]), "patients": len(rep["patients"]), "would_show": rep["would_show"],
        "by_indicator": dict(rep["by_indicator"]), "held_back": dict(rep["held_back"]), "kinds": kinds,
        "patient_kinds": len(rep["first_shown"]), "later_live": dict(later),
        "override_reasons": [{"system": s, "code": c, "display": displays[(s, c)], "patient_kinds": n}
                             for (s, c), n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))],
    }
