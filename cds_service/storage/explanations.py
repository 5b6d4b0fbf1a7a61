"""What an explanation page shows, kept per (client, service id, hookInstance) for `ui_explain_ttl_s`.

The record is built from the call's `BuildContext` right after the call: each model's score and
contributions (the primary and the `[model] secondary` ones), or what kept it from computing; each
input with value, unit, date and note; what was missing or unavailable; and how each score reads
(scale, unit, bands). The published evidence is not copied: the page reads it from the model.
It holds NO name, identifier or resource reference (the evidence references of features are
dropped), so the table is not a copy of the chart. It lives in the service database,
so every worker can serve the page, and old rows are purged whenever a new one is written.
"""
from __future__ import annotations

import json
import logging
import time
from functools import lru_cache
from typing import Any, Mapping

import orjson
from sqlalchemy import delete, select
from sqlalchemy.engine import Connection, Engine

from cds_service.builders.base import PREDICTION_EXTENSION, SCORE_USED, display_value, missing_text
from cds_service.storage import db

log = logging.getLogger("cds_service.explain")


def from_context(ctx, cards: list[dict], secondary_models: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-ready record of one invocation (`ctx` is the pipeline's BuildContext; `secondary_models` the
    service's `[model] secondary` models by ref, whose predictions are in `ctx.secondary`)."""
    service, model = ctx.service, ctx.model
    features = []
    for f in ctx.features.features:
        d = service.feature(f.name)
        features.append({"name": f.name, "label": f.label, "kind": d.kind if d else None, "value": f.value, "unit": f.unit,
                         "display": display_value(ctx, f), "date": f.date, "note": f.note, "imputed": f.imputed,
                         "missing": f.missing})
    results = []
    if model is not None:
        results.append(_result(ctx, "primary", model, ctx.prediction))
    for ref, other in (secondary_models or {}).items():
        results.append(_result(ctx, "secondary", other, ctx.secondary.get(ref)))
    return {
        "service": {"id": service.id, "title": service.title, "hook": service.hook, "description": service.description,
                    "model_ref": service.model_ref,
                    "population": [c.label for c in service.population]},
        "hook_instance": ctx.request.hook_instance,
        "as_of": ctx.features.as_of.isoformat(),
        "features": features,
        "unavailable": {key: str(reason) for key, reason in ctx.unavailable.items()},
        "applicability": ctx.applicability.to_json(),
        "cards": [{"summary": c.get("summary"), "indicator": c.get("indicator")} for c in cards],
        "results": results,
        "decided_without_score": decided_without_score(cards),
    }


def decided_without_score(cards) -> str | None:
    """The summary of what decided when no card of the call used a computed score (each says `scoreUsed: false`),
    else None: one card resting on the score (AF's scores card beside its NSAID card) keeps it the page's result."""
    unused = [((c.get("extension") or {}).get(PREDICTION_EXTENSION) or {}).get(SCORE_USED) is False for c in cards]
    return cards[0].get("summary") if cards and all(unused) else None


def _result(ctx, role: str, model, p) -> dict[str, Any]:
    """One model's part of the page: what it is, what it gave, and what it would need to give anything."""
    i = model.info
    out: dict[str, Any] = {
        "role": role,
        "model": {"id": i.id, "version": i.version, "title": i.title, "population": i.population, "outcome": i.outcome,
                  "citation": i.citation, "inputs": list(i.feature_names), "required": list(i.required), "scale": i.scale,
                  "unit": i.unit, "link": i.link, "higher_is_better": i.higher_is_better,
                  "bands": [b.to_json() for b in i.bands], "labels": dict(i.labels)},
        "prediction": None,
        "needs": [],
    }
    if p is not None:
        details = {k: v for k, v in p.details.items() if isinstance(v, (str, int, float, bool, list)) or k == "reference"}
        out["prediction"] = {"model": p.model, "version": p.version, "score": p.score, "linear_predictor": p.linear_predictor,
                             "baseline": p.baseline, "contributions": dict(p.contributions), "details": details}
    else:
        out["needs"] = needs(ctx, i.required)
    return out


def needs(ctx, required) -> list[str]:
    """What kept a model from computing, worded as the cards word it (`builders.base.missing_text`):
    the population criteria the record shows are not met, those that could not be checked, and the
    required inputs that have no usable value."""
    a = ctx.applicability
    out = [f"Outside the population this service was made for: {x.criterion.label} (the record shows "
           f"{display_value(ctx, x.feature)}); no input would make it apply" for x in a.failed]
    out += [f"Could not check {u.criterion.label}: {u.feature.label.lower()} {missing_text(ctx, u.feature.name, short=True)}"
            for u in a.unknown if u.criterion.if_unknown == "stop"]
    out += [f"{ctx.features[n].label}: {missing_text(ctx, n, short=True)}" for n in required if ctx.features[n].missing]
    return out


def save(engine: Engine, client: tuple[str, str], record: dict[str, Any], ttl_s: int, now: float | None = None) -> None:
    """Store (or replace, for a hookInstance the same client repeats) the record and purge expired ones."""
    with engine.begin() as conn:
        purge(conn, ttl_s, now)
        save_in(conn, client, record, ttl_s, now)


def purge(conn: Connection, ttl_s: int, now: float | None = None) -> None:
    """Delete the records older than `ttl_s`."""
    now = time.time() if now is None else now
    conn.execute(delete(db.explanations).where(db.explanations.c.created_at < now - ttl_s))


def save_in(conn: Connection, client: tuple[str, str], record: dict[str, Any], ttl_s: int,
            now: float | None = None) -> None:
    """`save` without the purge, inside a caller's transaction (the call's closing transaction, see
    call_writes). Purging there would make concurrent batches of several workers lock the same expired
    rows (PostgreSQL deadlocks); the caller purges separately, now and then."""
    conn.execute(upsert_statement(conn.dialect.name), row_of(client, record, now))


def row_of(client: tuple[str, str], record: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """The table row of a record (for `upsert_statement`)."""
    return {"iss": client[0], "tenant": client[1], "service_id": record["service"]["id"],
            "hook_instance": record["hook_instance"], "created_at": time.time() if now is None else now,
            "payload": orjson.dumps(record).decode()}


@lru_cache(maxsize=4)
def upsert_statement(dialect_name: str):
    """INSERT … ON CONFLICT DO UPDATE of a record: a hookInstance repeated by the same client replaces its
    record without a delete-then-insert race; another client's same hookInstance is another row. One
    object per database, so that the call writer runs it once for all the calls of a transaction."""
    stmt = db.insert_statement(dialect_name, db.explanations)
    return stmt.on_conflict_do_update(index_elements=["iss", "tenant", "service_id", "hook_instance"],
                                      set_={"created_at": stmt.excluded.created_at, "payload": stmt.excluded.payload})


def load(engine: Engine, client: tuple[str, str], service_id: str, hook_instance: str, ttl_s: int,
         now: float | None = None) -> dict | None:
    """The client's record, or None when there is none or it is older than `ttl_s`."""
    now = time.time() if now is None else now
    t = db.explanations
    with engine.connect() as conn:
        row = conn.execute(select(t.c.payload, t.c.created_at).where(
            t.c.iss == client[0], t.c.tenant == client[1],
            t.c.service_id == service_id, t.c.hook_instance == hook_instance)).first()
    if row is None or row.created_at < now - ttl_s:
        return None
    record = json.loads(row.payload)
    record["created_at"] = row.created_at
    return record
