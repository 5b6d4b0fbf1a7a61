"""The Redis replay cache (SEC-8): one atomic SET NX with the token's remaining lifetime,
and fail-closed when Redis is unreachable. Its behaviour against a real Redis shared by four
workers is in tests/integration/test_scale_out.py."""
from __future__ import annotations

import logging
import socket

from cds_service.security.replay import KEY_PREFIX, RedisReplayStore, make_replay_store
from cds_testing.optional import require_module


class RecordingRedis:
    """Records the SET call and answers like Redis does for NX (True when set, None when it existed)."""

    def __init__(self):
        self.calls, self.keys = [], set()

    def set(self, key, value, *, nx, px):
        self.calls.append((key, value, nx, px))
        if key in self.keys:
            return None
        self.keys.add(key)
        return True


def test_first_use_is_recorded_with_the_remaining_lifetime_and_second_is_a_replay():
    client = RecordingRedis()
    store = RedisReplayStore(client, clock=lambda: 1000.0)
    assert store.seen_before("abc", 1360.0) is False
    assert store.seen_before("abc", 1360.0) is True
    key, _value, nx, px = client.calls[0]
    assert key == KEY_PREFIX + "abc" and nx is True and px == 360_000  # expires with the token (+ leeway)


def test_an_already_expired_key_still_gets_a_positive_ttl():
    client = RecordingRedis()
    RedisReplayStore(client, clock=lambda: 1000.0).seen_before("k", 999.0)
    assert client.calls[0][3] == 1


def test_unreachable_redis_refuses_the_token(caplog):
    require_module("redis", "the `redis` extra")
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = RedisReplayStore.from_url(f"redis://127.0.0.1:{port}/0", timeout_s=0.5)
    with caplog.at_level(logging.ERROR, logger="cds_service.security.auth"):
        assert store.seen_before("k", 2e9) is True  # fail closed: treated as a replay
    assert any(getattr(r, "event", None) == "replay_store_error" for r in caplog.records)


def test_store_choice_follows_redis_url(tmp_path):
    from cds_service.config import Settings
    from cds_service.security.replay import SqlReplayStore
    from cds_service.storage.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path}/cds.sqlite3")
    assert isinstance(make_replay_store(Settings.from_mapping({}), engine), SqlReplayStore)
    require_module("redis", "the `redis` extra")
    settings = Settings.from_mapping({"redis_url": "redis://127.0.0.1:1/0"})
    assert isinstance(make_replay_store(settings, engine), RedisReplayStore)
