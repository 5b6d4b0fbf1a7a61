"""The rows one call writes besides feedback (issued cards, the explanation record, the audit row),
committed before the answer leaves, by ONE writer thread per process that commits many calls together
(group commit).

Why: each commit is the expensive part of a write (an fsync, or a round trip to PostgreSQL), and
SQLite lets one writer in at a time — a waiting writer sleeps in SQLite's busy handler for up to
100 ms at a time. One commit per call from every thread of every worker was the long tail of the
patient-view benchmark (p99 0.6–0.8 s, against 25 ms with no writes). With one writer per process,
the calls that arrive together share a transaction, and a call still gets its answer only after its
rows are committed (an audit row is never lost to a crash after the answer); a call whose rows could
not be committed is answered 500, never 200. Feedback is written
directly in its view: its 200 promises the row is stored.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass, field
from typing import Callable

from flask import Flask, Response, current_app, request
from sqlalchemy.engine import Connection, Engine

from cds_service.http.call_state import call_state
from cds_service.http.errors import outcome_response

log = logging.getLogger("cds_service.storage.db")

Write = Callable[[Connection], object]  # what a write returns (a cursor result) is not used
MAX_BATCH = 200  # calls per transaction
WAIT_S = 10.0  # a call waits at most this long for its commit, then is answered 500 (logged)


def queue_write(write: Write) -> None:
    """Run `write(conn)` in this request's closing transaction."""
    call_state().writes.append(write)


@dataclass
class _Job:
    writes: list[Write]
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False


class GroupCommitter:
    """One writer thread per process; started lazily so that it lives in the worker, not in the
    gunicorn master that built the app before forking."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._queue: queue.Queue[_Job] = queue.Queue()
        self._pid: int | None = None
        self._lock = threading.Lock()

    def commit(self, writes: list[Write]) -> bool:
        """Commit `writes` in a transaction shared with concurrent calls; True once committed."""
        self._ensure_thread()
        job = _Job(writes)
        self._queue.put(job)
        if not job.done.wait(WAIT_S):
            log.error("call writes not committed in time", extra={"event": "call_writes_slow"})
        return job.ok

    def _ensure_thread(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                self._queue = queue.Queue()  # a queue inherited through fork has no reader
                threading.Thread(target=self._run, name="cds-call-writes", daemon=True).start()
                self._pid = os.getpid()

    def _run(self) -> None:
        q = self._queue
        while True:
            batch = [q.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(q.get_nowait())
                except queue.Empty:
                    break
            self._commit_batch(batch)

    def _commit_batch(self, batch: list[_Job]) -> None:
        try:
            self._transaction(batch)
        except Exception:
            # One bad write must not cost the other calls their rows: retry each call on its own.
            for job in batch:
                try:
                    self._transaction([job])
                except Exception as exc:  # logged loudly; the call is answered 500 (flush_writes)
                    log.error("call writes failed", extra={"event": "call_writes_failed", "error": type(exc).__name__})
                    job.done.set()
        finally:
            for job in batch:
                job.done.set()

    def _transaction(self, jobs: list[_Job]) -> None:
        with self.engine.begin() as conn:
            for job in jobs:
                for write in job.writes:
                    write(conn)
        for job in jobs:
            job.ok = True


def init_call_writes(app: Flask, engine: Engine) -> None:
    """The app's committer; `flush_writes` and `flush_writes_on_teardown` (request hooks) use it."""
    app.extensions["cds_call_writes"] = GroupCommitter(engine)


def flush_writes(resp: Response) -> Response:
    """After-request hook, run after every hook that queues rows. A call whose rows could not be
    committed is answered 500 with an OperationOutcome, never with its cards: an answer the audit
    table does not know of must not leave (the metrics and the call log after it see the 500)."""
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
    """Commit the call's queued rows; True when committed (or none were queued)."""
    state = call_state()
    writes, state.writes = state.writes, []
    if not writes:
        return True
    return current_app.extensions["cds_call_writes"].commit(writes)
