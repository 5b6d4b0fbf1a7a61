"""Group commit of each call's rows: committed before the answer, batched across threads,
and one bad write never costs other calls their rows."""
import threading
import time

import sqlalchemy as sa

from cds_service.storage import db
from cds_service.storage.call_writes import GroupCommitter


def _engine(tmp_path):
    return db.make_engine(f"sqlite:///{tmp_path}/w.sqlite3")


def _row(i):
    return {"iss": "", "tenant": "", "card_uuid": f"c{i}", "service_id": "s", "hook_instance": f"h{i}", "indicator": "info", "issued_at": 0.0}


def _count(engine):
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(db.cards_issued)).scalar()


def test_rows_are_committed_when_commit_returns(tmp_path):
    engine = _engine(tmp_path)
    committer = GroupCommitter(engine)
    assert committer.commit([lambda conn: conn.execute(db.cards_issued.insert().values(**_row(1)))]) is True
    assert _count(engine) == 1


def test_concurrent_calls_all_land(tmp_path):
    engine = _engine(tmp_path)
    committer = GroupCommitter(engine)
    results = []

    def call(i):
        results.append(committer.commit([lambda conn: conn.execute(db.cards_issued.insert().values(**_row(i)))]))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 64 and _count(engine) == 64


def test_a_failing_write_does_not_lose_the_other_calls_rows(tmp_path):
    engine = _engine(tmp_path)
    committer = GroupCommitter(engine)
    good = [lambda conn, i=i: conn.execute(db.cards_issued.insert().values(**_row(i))) for i in range(3)]
    bad = [lambda conn: conn.execute(sa.text("INSERT INTO no_such_table VALUES (1)"))]
    out = {}
    barrier = threading.Barrier(4)

    def call(name, writes):
        barrier.wait()
        out[name] = committer.commit(writes)

    threads = [threading.Thread(target=call, args=(f"g{i}", [w])) for i, w in enumerate(good)]
    threads.append(threading.Thread(target=call, args=("bad", bad)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == {"g0": True, "g1": True, "g2": True, "bad": False}
    assert _count(engine) == 3


def _blocking_write(gate):
    def write(conn):
        gate.wait(10)
    return write


def test_after_answer_commit_returns_at_once_and_settle_waits_for_the_rows(tmp_path):
    """after-answer: commit() only queues (the answer does not wait for the database); settle() returns
    once everything queued before it is committed."""
    engine = _engine(tmp_path)
    committer = GroupCommitter(engine, wait=False)
    gate = threading.Event()
    assert committer.commit([_blocking_write(gate)]) is True  # the writer is now held by this write
    assert committer.commit([lambda conn: conn.execute(db.cards_issued.insert().values(**_row(1)))]) is True
    assert _count(engine) == 0  # answered, not yet committed
    gate.set()
    assert committer.settle() is True
    assert _count(engine) == 1 and committer.queued() == 0


def test_after_answer_a_full_queue_refuses_the_call(tmp_path):
    """The queue is bounded: what a kill -9 can lose is at most `max_queued` calls' rows; beyond it, calls are refused."""
    engine = _engine(tmp_path)
    committer = GroupCommitter(engine, wait=False, max_queued=2)
    gate = threading.Event()
    assert committer.commit([_blocking_write(gate)]) is True
    deadline = time.monotonic() + 5
    while committer.queued() and time.monotonic() < deadline:  # until the writer holds it
        time.sleep(0.01)
    insert = [lambda conn: conn.execute(db.cards_issued.insert().values(**_row(1)))]
    assert committer.commit(insert) is True and committer.commit(insert) is True  # the queue holds 2
    assert committer.commit(insert) is False
    gate.set()
    assert committer.settle()


def test_after_answer_a_failed_write_is_counted_as_lost_and_the_others_land(tmp_path):
    engine = _engine(tmp_path)
    committer = GroupCommitter(engine, wait=False)
    gate = threading.Event()
    committer.commit([_blocking_write(gate)])  # so that the next three share one transaction
    for i in range(2):
        committer.commit([lambda conn, i=i: conn.execute(db.cards_issued.insert().values(**_row(i)))])
    committer.commit([lambda conn: conn.execute(sa.text("INSERT INTO no_such_table VALUES (1)")),
                      lambda conn: None])
    gate.set()
    assert committer.settle()
    assert _count(engine) == 2 and committer.rows_lost == 2 and not committer.failing
