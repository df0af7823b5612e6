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
