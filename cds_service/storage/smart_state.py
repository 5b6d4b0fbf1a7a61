"""SMART launches in progress: saved by `/smart/launch`, used once by `/smart/callback`.

Kept in the service database so that the callback may reach any worker or host. A row is found by
the hash of its `state`, used at most once (deleted in the same transaction that reads it), and
worthless after `smart_launch_ttl_s`.
"""
from __future__ import annotations

import hashlib
import time

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine

from cds_service.security.smart_launch import PendingLaunch
from cds_service.storage import db

T = db.smart_launches


def _key(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


def save(engine: Engine, pending: PendingLaunch, ttl_s: float) -> None:
    with engine.begin() as conn:
        conn.execute(delete(T).where(T.c.created_at < time.time() - ttl_s))  # expired launches go
        conn.execute(insert(T).values(state_key=_key(pending.state), created_at=pending.created_at, iss=pending.iss,
                                      client_iss=pending.client_iss, client_id=pending.client_id, token_endpoint=pending.token_endpoint,
                                      redirect_uri=pending.redirect_uri, code_verifier=pending.code_verifier))


def take(engine: Engine, state: str, ttl_s: float, now: float | None = None) -> PendingLaunch | None:
    """The launch saved under `state`, removed so that no second callback can use it; None when
    unknown, already used or expired."""
    key, now = _key(state), time.time() if now is None else now
    with engine.begin() as conn:
        row = conn.execute(select(T).where(T.c.state_key == key)).mappings().first()
        if row is None:
            return None
        # Two callbacks racing for one state: only the one whose DELETE removes the row goes on.
        if conn.execute(delete(T).where(T.c.state_key == key)).rowcount != 1:
            return None
    if row["created_at"] < now - ttl_s:
        return None
    return PendingLaunch(state=state, iss=row["iss"], client_id=row["client_id"], token_endpoint=row["token_endpoint"],
                         redirect_uri=row["redirect_uri"], code_verifier=row["code_verifier"],
                         created_at=row["created_at"], client_iss=row["client_iss"])
