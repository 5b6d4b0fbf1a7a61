"""The rows one call writes besides feedback (issued cards, the explanation record, the audit row),
committed by ONE writer thread per process that commits many calls together (group commit).

Why one writer: each commit is the expensive part of a write (an fsync, or a round trip to PostgreSQL),
and SQLite lets one writer in at a time — a waiting writer sleeps in SQLite's busy handler for up to
100 ms at a time. With one writer per process, the calls that arrive together share a transaction.

When (setting `call_writes`, README "Durability of call records"):

- "after-answer" (the default): the call's rows are queued and the answer leaves at once; the writer
  commits them a few milliseconds later, with those of the calls answered within LINGER_S of the first
  (one transaction and one fsync for all: measured in bench/profile_s1.py, the writer's CPU per call fell
  from 0.25 to 0.05-0.17 ms). Nothing on the request path waits for the database (measured:
  the wait and its fsync were the tail of the patient-view benchmark). Every answered call is queued:
  a call is refused (500 with an OperationOutcome, never its cards) when the queue already holds
  `call_writes_queue_max` calls, and while the writer is failing (its last transaction and the retry of
  each call in it failed) — so a database that cannot take the rows stops the service answering, as
  before. What this gives up: rows still queued when the process is killed (`kill -9`, OOM, power loss)
  are lost — the calls answered in the last few milliseconds, at most `call_writes_queue_max`; a failed
  write loses the rows of calls already answered. Both are counted (`cds_call_rows_lost_total`,
  `cds_call_writes_queued`), logged and alerted on (README). A stop (SIGTERM) drains the queue first.
- "before-answer": a call gets its answer only after its rows are committed; a call whose rows could
  not be committed is answered 500, never 200 (no answer the audit table does not know of).

Feedback is written directly in its view: its 200 promises the row is stored. Readers of call rows in
this process (feedback's issued-card check, the explanation page, analytics) call `settle` first, so
they see the calls this process has answered.
"""
from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from flask import Flask, Response, current_app, request
from sqlalchemy.engine import Connection, Engine

from cds_service.http.call_state import call_state
from cds_service.http.errors import outcome_response

log = logging.getLogger("cds_service.storage.db")

@dataclass(frozen=True, eq=False)
class Rows:
    """Rows for one statement: the writer runs a statement once per transaction for all the calls in it
    (executemany), instead of once per call."""

    statement: Any
    params: list[dict]


# What a callable write returns (a cursor result) is not used.
Write = Callable[[Connection], object] | Rows
MAX_BATCH = 200  # calls per transaction
LINGER_S = 0.005  # after-answer: how long a transaction waits for more calls to join it
WAIT_S = 10.0  # a call (before-answer) or a reader (settle) waits at most this long, then goes on (logged)
RETRY_S = 1.0  # after-answer: calls are refused for this long after a failed transaction, then tried again
# after-answer: feedback naming a card not found yet looks again for this long (another worker's rows may
# still be queued); it bounds what an unknown card costs a feedback request.
ISSUED_WAIT_S = 0.5


def queue_write(write: Write) -> None:
    """Run `write(conn)` (or insert `Rows`) in the transaction that records this request's call."""
    call_state().writes.append(write)


def queue_rows(statement: Any, params: dict | list[dict]) -> None:
    """Execute `statement` with `params` in the transaction that records this request's call; prefer it
    to `queue_write` for inserts: one execution serves every call of the transaction."""
    call_state().writes.append(Rows(statement, params if isinstance(params, list) else [params]))


@dataclass(eq=False)
class _Job:
    writes: list[Write]
    # Set when someone waits for the job (before-answer, settle): its failure is theirs to report. A call queued
    # after-answer has none: nobody waits for it, and an Event per call cost more than queueing its rows.
    done: threading.Event | None = None
    ok: bool = False

    @property
    def waited(self) -> bool:
        return self.done is not None


class GroupCommitter:
    """One writer thread per process; started lazily so that it lives in the worker, not in the
    gunicorn master that built the app before forking.

    `wait`: commit() waits for the commit (before-answer); else it only queues (after-answer).
    `metrics`: the app's Metrics (queue depth, rows lost), or None.
    """

    def __init__(self, engine: Engine, *, wait: bool = True, max_queued: int = 10000, metrics=None):
        self.engine = engine
        self.wait = wait
        self.max_queued = max_queued
        self.metrics = metrics
        self.failing = False  # the last transaction failed even call by call; cleared by the next success
        self._failed_at = 0.0
        self.rows_lost = 0
        self._queue: queue.Queue[_Job] = queue.Queue(max_queued)
        self._pid: int | None = None
        self._lock = threading.Lock()

    def commit(self, writes: list[Write]) -> bool:
        """Record `writes` in a transaction shared with concurrent calls. True when committed (wait) or
        queued (after-answer); False when the call must be refused (not committed, queue full, failing)."""
        self._ensure_thread()
        if not self.wait:
            if self.failing and time.monotonic() - self._failed_at < RETRY_S:
                return False
            try:
                self._queue.put_nowait(_Job(writes))
            except queue.Full:
                log.error("call writes queue full", extra={"event": "call_writes_queue_full"})
                return False
            return True
        done = threading.Event()
        job = _Job(writes, done=done)
        self._queue.put(job)
        if not done.wait(WAIT_S):
            log.error("call writes not committed in time", extra={"event": "call_writes_slow"})
        return job.ok

    def settle(self, timeout: float = WAIT_S) -> bool:
        """Wait until the rows queued so far in this process are committed (or failed); True if in time."""
        if self._pid != os.getpid():
            return True  # no writer in this process: nothing was queued here
        done = threading.Event()
        try:
            self._queue.put(_Job([], done=done), timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def queued(self) -> int:
        return self._queue.qsize()

    def _ensure_thread(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                self._queue = queue.Queue(self.max_queued)  # a queue inherited through fork has no reader
                self.failing = False
                threading.Thread(target=self._run, name="cds-call-writes", daemon=True).start()
                atexit.register(self.settle)  # a normal exit (gunicorn's SIGTERM) commits what is queued
                self._pid = os.getpid()

    def _run(self) -> None:
        q = self._queue
        while True:
            batch = [q.get()]
            linger_until = time.monotonic() + LINGER_S if not self.wait else 0.0
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(q.get_nowait())
                except queue.Empty:
                    # after-answer: nobody waits for these rows, so the calls of the next few milliseconds join
                    # the transaction (one begin, one execution per statement, one fsync for all); a waiting
                    # reader (settle) ends the wait
                    left = linger_until - time.monotonic()
                    if left <= 0 or batch[-1].waited:
                        break
                    try:
                        batch.append(q.get(timeout=left))
                    except queue.Empty:
                        break
            self._commit_batch(batch)
            if self.metrics is not None:
                self.metrics.call_writes_queued.labels(self.engine.dialect.name).set(q.qsize())

    def _commit_batch(self, batch: list[_Job]) -> None:
        try:
            self._transaction(batch)
            if any(job.writes for job in batch):  # a batch of `settle` markers alone proves nothing
                self.failing = False
        except Exception:
            # One bad write must not cost the other calls their rows: retry each call on its own.
            failed = 0
            for job in batch:
                try:
                    self._transaction([job])
                except Exception as exc:  # logged loudly; a waiting call is answered 500 (flush_writes)
                    failed += 1
                    log.error("call writes failed", extra={"event": "call_writes_failed", "error": type(exc).__name__})
                    if not job.waited:
                        self._lost(job)
            self.failing = failed == sum(1 for job in batch if job.writes)  # nothing could be written
            self._failed_at = time.monotonic()
        finally:
            for job in batch:
                if job.done is not None:
                    job.done.set()

    def _lost(self, job: _Job) -> None:
        """Rows of a call that was answered (after-answer) and could not be committed."""
        self.rows_lost += len(job.writes)
        if self.metrics is not None:
            self.metrics.call_rows_lost.labels(self.engine.dialect.name).inc(len(job.writes))

    def _transaction(self, jobs: list[_Job]) -> None:
        if not any(job.writes for job in jobs):  # `settle` markers (and calls without rows): nothing to commit
            for job in jobs:
                job.ok = True
            return
        grouped: dict[int, tuple[Any, list[dict]]] = {}  # by statement, in the order first seen
        with self.engine.begin() as conn:
            for job in jobs:
                for write in job.writes:
                    if isinstance(write, Rows):
                        grouped.setdefault(id(write.statement), (write.statement, []))[1].extend(write.params)
                    else:
                        write(conn)
            for statement, params in grouped.values():
                conn.execute(statement, params)
        for job in jobs:
            job.ok = True


def init_call_writes(app: Flask, engine: Engine) -> None:
    """The app's committer; `flush_writes` and `flush_writes_on_teardown` (request hooks) use it."""
    runtime = app.extensions["cds"]
    settings = runtime.settings
    app.extensions["cds_call_writes"] = GroupCommitter(engine, wait=settings.call_writes == "before-answer",
                                                       max_queued=settings.call_writes_queue_max,
                                                       metrics=runtime.metrics)


def committer(app: Flask) -> GroupCommitter:
    return app.extensions["cds_call_writes"]


def settle() -> None:
    """Before reading call rows in a request: the rows this process has queued are committed."""
    if not committer(current_app).settle():
        log.error("call writes not committed in time", extra={"event": "call_writes_slow"})


def flush_writes(resp: Response) -> Response:
    """After-request hook, run after every hook that queues rows. A call whose rows could not be
    committed (before-answer) or queued (after-answer) is answered 500 with an OperationOutcome, never
    with its cards: an answer the audit table would not know of must not leave (the metrics and the
    call log after it see the 500)."""
    if _flush():
        return resp
    runtime = current_app.extensions["cds"]
    if runtime.metrics is not None:
        runtime.metrics.write_failures.labels(request.url_rule.rule if request.url_rule else "<unmatched>").inc()
    return outcome_response(500, "The call could not be recorded; it was not answered. Try again.", "exception")


def flush_writes_on_teardown(_exc: BaseException | None) -> None:
    """Teardown hook, the last to run: the request ended by an exception no handler turned into a response."""
    _flush()


def _flush() -> bool:
    """Commit (or queue) the call's rows; True when done (or none were queued)."""
    state = call_state()
    writes, state.writes = state.writes, []
    if not writes:
        return True
    return committer(current_app).commit(writes)
