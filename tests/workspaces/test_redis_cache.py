"""The Redis cache backend (config.cache.ReusingRedisCache) against a real redis-server."""

from __future__ import annotations

import pytest
import redis

from config.cache import ReusingRedisCache
from tests.deprov.harness import RedisServer


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = RedisServer(tmp_path_factory.mktemp("redis"))
    srv.start()
    yield srv
    srv.stop()


def test_it_stores_counts_and_forgets_like_djangos_backend(server):
    cache = ReusingRedisCache(server.url, {})
    cache.set("a", {"n": 1}, 30)
    cache.set_many({"b": 2, "c": 3}, 30)
    assert cache.get("a") == {"n": 1}
    assert cache.get_many(["a", "b", "c", "missing"]) == {"a": {"n": 1}, "b": 2, "c": 3}
    assert cache.incr("b") == 3
    assert cache.add("b", 99) is False
    cache.delete("a")
    assert cache.get("a") is None


def test_one_client_serves_every_call(server):
    cache = ReusingRedisCache(server.url, {})
    client = cache._cache.get_client()
    cache.set("k", 1)
    assert cache._cache.get_client() is client
    assert cache._cache.get_client(write=True) is client  # one server: one pool, one client


def test_a_redis_restart_is_survived_by_the_reused_client(server):
    cache = ReusingRedisCache(server.url, {})
    cache.set("before", 1)
    server.stop()
    with pytest.raises(redis.ConnectionError):
        cache.get("before")
    server.start()  # same port, empty (no persistence)
    assert cache.get("before") is None
    cache.set("after", 2)
    assert cache.get("after") == 2


def test_the_rate_limiter_counts_every_counter_in_one_round_trip_with_an_expiry(server, settings, monkeypatch):
    from config.ratelimit import Counter, FixedWindowLimiter

    settings.CACHES = {"default": {"BACKEND": "config.cache.ReusingRedisCache", "LOCATION": server.url}}
    settings.TEST_LIMIT_WINDOW = 60
    monkeypatch.setattr("config.ratelimit._now", lambda: 6030.0)  # 30 s into window 100
    limiter = FixedWindowLimiter("test", window_setting="TEST_LIMIT_WINDOW", default_window=60)
    counters = [Counter("ip:192.0.2.1", 2), Counter("email:a@example.test", 3)]
    pipelines = []
    real_pipeline = redis.Redis.pipeline
    monkeypatch.setattr(redis.Redis, "pipeline", lambda self, *a, **k: pipelines.append(1) or real_pipeline(self, *a, **k))
    limiter.hit(counters)
    assert pipelines == [1]
    assert limiter.check(counters).retry_after is None
    limiter.hit(counters[:1])
    assert limiter.check(counters).retry_after == 30
    raw = redis.Redis.from_url(server.url)
    ttls = [raw.ttl(k) for k in raw.keys("*gatehouse:test:100:*")]
    assert len(ttls) == 2 and all(60 <= t <= 65 for t in ttls)
