"""SEC-8: a jti is accepted once within its lifetime, by whichever worker sees it first."""
from __future__ import annotations

import threading

import sqlalchemy as sa

from cds_service.security.replay import SqlReplayStore, replay_key
from cds_service.storage import db
from cds_service.storage.db import make_engine


def test_sec8_replay_store_accepts_a_key_once(tmp_path):
    store = SqlReplayStore(make_engine(f"sqlite:///{tmp_path}/r.sqlite3"), clock=lambda: 1000.0)
    assert store.seen_before("k1", 1300.0) is False
    assert store.seen_before("k1", 1300.0) is True
    assert store.seen_before("k2", 1300.0) is False


def test_sec8_two_workers_racing_on_one_jti_accept_it_exactly_once(tmp_path):
    """SEC-8: the primary key makes the insert atomic: 8 'workers' (each with its own engine on the
    same database file) present the same jti at the same moment; exactly one wins."""
    url = f"sqlite:///{tmp_path}/shared.sqlite3"
    make_engine(url)
    stores = [SqlReplayStore(make_engine(url), clock=lambda: 1000.0) for _ in range(8)]
    barrier = threading.Barrier(len(stores))
    results = []

    def worker(store):
        barrier.wait()
        results.append(store.seen_before(replay_key("https://sandbox.cds-hooks.org", "same-jti"), 1300.0))

    threads = [threading.Thread(target=worker, args=(st,)) for st in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == [False] + [True] * 7


def test_sec8_expired_rows_are_purged_and_an_expired_key_may_be_reused(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/r.sqlite3")
    now = [1000.0]
    store = SqlReplayStore(engine, clock=lambda: now[0], purge_every_s=60)
    store.seen_before("old", 1100.0)
    store.seen_before("young", 5000.0)
    now[0] = 2000.0
    assert store.seen_before("old", 2300.0) is False  # its first token expired long ago
    store.seen_before("trigger-purge", 2300.0)
    with engine.connect() as conn:
        keys = set(conn.execute(sa.select(db.jti_seen.c.key)).scalars())
    assert keys == {"old", "young", "trigger-purge"}
    now[0] = 6000.0
    store.seen_before("later", 6300.0)
    with engine.connect() as conn:
        keys = set(conn.execute(sa.select(db.jti_seen.c.key)).scalars())
    assert keys == {"later"}


def test_sec8_replay_key_is_a_hash_of_iss_and_jti_never_the_raw_values():
    key = replay_key("https://sandbox.cds-hooks.org", "abc")
    assert len(key) == 64 and "abc" not in key
    assert replay_key("https://a.example", "bc") != replay_key("https://a.exampleb", "c")
