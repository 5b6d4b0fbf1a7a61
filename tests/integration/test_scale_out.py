"""Many workers over shared state: the production server (`cds-service serve`: nginx in front
of gunicorn with the checked-in config, 4 workers) against real PostgreSQL and Redis servers started here on 127.0.0.1.

- SEC-8: a `jti` accepted by one worker is refused by the others (replay cache in Redis, and in the
  `jti_seen` table of PostgreSQL when no Redis is configured).
- FEEDBACK-3 / durability: no feedback row is lost while a worker is killed with SIGKILL under
  concurrent posts: every POST answered 200 is in the database exactly once (clients retry).
- Graceful shutdown: SIGTERM while a request is in flight → that request still completes.

Which worker answered is read from the JSON call log (`pid` field), never from a response header.
The tests skip only when the server binaries are missing outside `scripts/test` (which sets REQUIRE_ALL_TEST_DEPS=1); there they must run.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from cds_testing.apps import LINK_SECRET, services_dir
from cds_testing.db_servers import postgres_bin, postgres_server, redis_bin, redis_server
from cds_testing.fhir_factory import ascvd_prefetch, hook_request
from cds_testing.optional import missing
from cds_testing.security_support import ec_key, jwks, sign

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))
from bench.servers import Service  # noqa: E402  (the benchmark's launcher of the production server)

pytestmark = pytest.mark.integration

_MISSING = [name for name, found in (("PostgreSQL (initdb)", postgres_bin()), ("redis-server", redis_bin())) if not found]
if _MISSING:
    missing(f"{', '.join(_MISSING)} not installed (tests/setup.d/40-postgres-redis.sh installs them)", allow_module_level=True)

BASE = "https://cds.example.org"
SERVICE = "ascvd-10y-risk"
ISS = "https://ehr.scale-out.test"
KEY = ec_key("scale-out-test-key", "ES384", "P-384")
WORKERS = 4


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory):
    with postgres_server(tmp_path_factory.mktemp("pg-logs")) as url:
        yield url


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


def _auth_env(database_url: str, redis: str = "") -> dict[str, str]:
    client = {"iss": ISS, "jwks": jwks(KEY), "fhir_servers": ["https://fhir.scale-out.test/r4"]}
    return {"CDS_AUTH_REQUIRED": "true", "CDS_CLIENTS": json.dumps([client]), "CDS_PUBLIC_BASE_URL": BASE,
            "CDS_UI_LINK_SECRET": LINK_SECRET, "CDS_DATABASE_URL": database_url, "CDS_REDIS_URL": redis, "CDS_AUDIT_SALT": "scale-out-test"}


def _token(jti: str) -> str:
    now = int(time.time())
    claims = {"iss": ISS, "aud": f"{BASE}/cds-services/{SERVICE}", "iat": now, "exp": now + 300, "jti": jti}
    return sign(claims, KEY)


def _call(url: str, token: str, hook_instance: str) -> int:
    body = hook_request(prefetch=ascvd_prefetch())
    body["hookInstance"] = hook_instance
    # A fresh connection per call (Connection: close), so the kernel hands it to any of the workers.
    resp = requests.post(f"{url}/cds-services/{SERVICE}", json=body, timeout=30,
                         headers={"Authorization": f"Bearer {token}", "Connection": "close"})
    return resp.status_code


def _call_lines(log_path: Path) -> list[dict]:
    lines = []
    for raw in log_path.read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            entry = json.loads(raw)
            if entry.get("event") == "call" and entry.get("service") == SERVICE:
                lines.append(entry)
    return lines


def _unique_drop_db(pg: str, name: str) -> str:
    """A database of its own per test on the shared PostgreSQL server (tables created by the app)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(pg, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return pg.rsplit("/", 1)[0] + f"/{name}"


@pytest.mark.parametrize("replay_backend", ["redis", "postgres"])
def test_replayed_jti_is_refused_by_every_other_worker(replay_backend, pg_url, redis_url, tmp_path):
    """SEC-8: a token whose jti was accepted once is refused wherever the replay lands."""
    db_url = _unique_drop_db(pg_url, f"replay_{replay_backend}")
    env = _auth_env(db_url, redis_url if replay_backend == "redis" else "")
    log = tmp_path / "service.log"
    with Service(workers=WORKERS, env=env, log_path=log) as srv:
        assert len(srv.worker_pids()) == WORKERS
        token = _token(str(uuid.uuid4()))
        assert _call(srv.url, token, "first-use") == 200
        first_pid = next(e["pid"] for e in _call_lines(log) if e.get("hookInstance") == "first-use")

        # Replays, concurrently and on fresh connections, until some land on other workers.
        statuses, other_workers = [], set()
        for _round in range(10):
            with ThreadPoolExecutor(8) as pool:
                statuses += list(pool.map(lambda i: _call(srv.url, token, f"replay-{i}"), range(16)))
            time.sleep(0.2)  # let the log lines reach the file
            refused = [e for e in _call_lines(log) if e["status"] == 401]
            other_workers = {e["pid"] for e in refused} - {first_pid}
            if other_workers:
                break
        assert statuses and set(statuses) == {401}, statuses
        assert other_workers, "every replay landed on the worker that accepted the token; cannot show sharing"
        assert set(srv.worker_pids()) >= other_workers  # the refusing pids really are this server's workers

        # The 401s are replays, not broken authentication: a new jti is accepted on any worker.
        assert _call(srv.url, _token(str(uuid.uuid4())), "fresh-token") == 200

    from sqlalchemy import create_engine, func, select

    from cds_service.storage import db

    engine = create_engine(db_url)
    with engine.connect() as conn:
        in_table = conn.execute(select(func.count()).select_from(db.jti_seen)).scalar_one()
    engine.dispose()
    if replay_backend == "redis":
        import redis

        client = redis.Redis.from_url(redis_url)
        assert len(client.keys("cds:jti:*")) >= 2 and in_table == 0  # the cache really is Redis
        assert 0 < client.pttl(next(iter(client.keys("cds:jti:*")))) <= (300 + 60) * 1000  # expires with the token
        client.close()
    else:
        assert in_table >= 2


def _feedback_body(card: str) -> dict:
    return {"feedback": [{"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-06-01T10:00:00Z",
                          "overrideReason": {"userComment": "scale-out test"}}]}


def _issue(db_url: str, cards: list[str]) -> None:
    """Record `cards` as issued by SERVICE to the client of an auth-off service (iss '', tenant '')."""
    from cds_service.storage import db

    engine = db.make_engine(db_url)
    rows = [{"iss": "", "tenant": "", "card_uuid": c, "service_id": SERVICE, "hook_instance": "scale-out",
             "indicator": "info", "issued_at": time.time()} for c in cards]
    assert db.insert_ignoring_duplicates(engine, db.cards_issued, rows) == len(cards)
    engine.dispose()


def test_no_feedback_lost_while_a_worker_is_killed(pg_url, tmp_path):
    """FEEDBACK-3 and durability: every POST answered 200 is stored exactly once, though a worker dies
    with SIGKILL in the middle of concurrent posts (clients retry what failed)."""
    db_url = _unique_drop_db(pg_url, "feedback_kill")
    env = {"CDS_DATABASE_URL": db_url}
    cards = [str(uuid.uuid4()) for _ in range(240)]
    _issue(db_url, cards)  # feedback is accepted only for cards issued to the reporting client
    acknowledged: set[str] = set()
    failures = []
    lock = threading.Lock()

    with Service(workers=WORKERS, env=env, log_path=tmp_path / "service.log") as srv:
        before = set(srv.worker_pids())

        def post(card: str) -> None:
            for _attempt in range(30):
                try:
                    resp = requests.post(f"{srv.url}/cds-services/{SERVICE}/feedback", json=_feedback_body(card),
                                         headers={"Connection": "close"}, timeout=15)
                    if resp.status_code == 200:
                        with lock:
                            acknowledged.add(card)
                        return
                except requests.RequestException:
                    pass  # the worker died under us: retry, as an EHR does
                with lock:
                    failures.append(card)
                time.sleep(0.05)

        killed = []

        def killer() -> None:
            give_up = time.monotonic() + 60
            for threshold in (40, 120):  # mid-stream: posts are in flight on every worker
                while len(acknowledged) < threshold:
                    if time.monotonic() > give_up:
                        return
                    time.sleep(0.005)
                victim = srv.worker_pids()[0]
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)

        kill_thread = threading.Thread(target=killer, daemon=True)
        kill_thread.start()
        with ThreadPoolExecutor(12) as pool:
            list(pool.map(post, cards))
        kill_thread.join(timeout=30)
        time.sleep(0.5)
        after = set(srv.worker_pids())

    print(f"killed {killed}; {len(failures)} post attempts failed and were retried")  # shown with -s
    assert len(killed) == 2 and not (set(killed) & after)  # two workers died and gunicorn replaced them
    assert len(after) == WORKERS and after != before
    assert acknowledged == set(cards)  # with retries, every post was eventually acknowledged

    from sqlalchemy import create_engine, func, select

    from cds_service.storage import db

    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(select(db.feedback.c.card_uuid, func.count()).group_by(db.feedback.c.card_uuid)).all()
    engine.dispose()
    stored = dict(rows)
    assert set(stored) == acknowledged
    assert set(stored.values()) == {1}  # exactly once: retried posts were deduplicated


def test_sigterm_lets_the_request_in_flight_finish(tmp_path):
    """Graceful shutdown: a request already being read when SIGTERM arrives still gets its 200."""
    body = json.dumps(hook_request(prefetch=ascvd_prefetch())).encode()
    # The service files without their [alerts] tables: every card, every call (cds_testing.apps).
    with Service(workers=1, env={"CDS_HOOKS_DIR": services_dir(tmp_path, None, alerts=False)},
                 log_path=tmp_path / "service.log") as srv:
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
        head = (f"POST /cds-services/{SERVICE} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        sock.sendall(head + body[:100])
        time.sleep(0.5)  # the worker has the request and waits for the rest of the body
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert srv.proc.poll() is None  # still draining
        sock.sendall(body[100:])
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
        sock.close()
        status_line, _, rest = reply.partition(b"\r\n")
        assert status_line.startswith(b"HTTP/1.1 200"), reply[:300]
        assert json.loads(rest.partition(b"\r\n\r\n")[2])["cards"]
        assert srv.proc.wait(timeout=20) == 0


def test_insert_ignoring_duplicates_counts_new_rows_on_postgresql(pg_url):
    """FEEDBACK-3 on PostgreSQL: duplicates are skipped and the count of new rows is right (psycopg
    reports rowcount -1 for these statements, so the count comes from RETURNING)."""
    from cds_service.storage import db

    engine = db.make_engine(_unique_drop_db(pg_url, "insert_ignoring"))
    row = {"iss": "", "tenant": "", "service_id": "s", "hook_instance": "h", "indicator": "info", "issued_at": 1.0}
    rows = [dict(row, card_uuid=f"c{i}") for i in range(3)]
    assert db.insert_ignoring_duplicates(engine, db.cards_issued, rows) == 3
    assert db.insert_ignoring_duplicates(engine, db.cards_issued, rows) == 0
    assert db.insert_ignoring_duplicates(engine, db.cards_issued, rows + [dict(row, card_uuid="c9")]) == 1
    engine.dispose()
