"""The Redis cache backend, reusing its redis-py client.

Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` for every cache call. With
redis-py 5+ each constructor fills a case-insensitive table of ~200 response callbacks: measured at
a quarter of a SCIM deactivation's CPU (four cache calls per request: credential, rate limit, list
cache). A ``redis.Redis`` is thread-safe and holds only its connection pool, so one per pool serves.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class _ReusingRedisCacheClient(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)  # type: ignore[attr-defined]  # Django internals, not in the stubs
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))  # type: ignore[attr-defined]  # Django internals, not in the stubs
        return client


class ReusingRedisCache(RedisCache):
    """``django.core.cache.backends.redis.RedisCache`` with one redis-py client per connection pool."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = _ReusingRedisCacheClient
