"""Request rate limits per client IP and per conversation (requests per minute, 0 disables).

Each key has a token bucket holding up to the per-minute limit and refilled continuously at
limit/60 per second: a client may burst up to the limit, then gets limit per minute, with no
doubling at a window boundary. The buckets live in a `BucketStore`: `RedisBuckets` (one atomic Lua
script per check, shared by every worker and app server) when `POLICYBOT_REDIS_URL` is set, else
`MemoryBuckets` (per process: with N workers the effective limit is at most N times the setting,
and `policybot serve` warns). While Redis is unreachable, requests are allowed (fail open), with one
warning per outage and a reconnect attempt every few seconds. The client IP is
`handoff.clientip.client_ip` (X-Forwarded-For only from trusted proxy addresses or networks), the
same as for the console lockouts and the logs.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Protocol

import redis
from fastapi import HTTPException, Request
from redis.backoff import NoBackoff
from redis.retry import Retry

from handoff.clientip import client_ip, trusted_networks

log = logging.getLogger(__name__)

KEY_PREFIX = "policybot:rl:"
REFILL_SECONDS = 60.0  # an empty bucket is full again after a minute, whatever the limit


class BucketStore(Protocol):
    """Where the token buckets are kept."""

    def take(self, key: str, limit: int) -> float | None:
        """Take one token from `key`'s bucket (burst `limit`, refill limit/60 per second).

        None: allowed (a token was taken). A number: refused; the tokens left (below 1)."""
        ...


class MemoryBuckets:
    """The buckets of this process (a dict under a lock)."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, monotonic time of update)
        self._lock = threading.Lock()

    def take(self, key: str, limit: int) -> float | None:
        rate = limit / REFILL_SECONDS  # tokens per second
        now = time.monotonic()
        with self._lock:
            tokens, then = self._buckets.get(key, (float(limit), now))
            tokens = min(float(limit), tokens + (now - then) * rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > 100_000:  # drop the buckets that have refilled completely
                self._buckets = {
                    k: (t, u) for k, (t, u) in self._buckets.items() if t + (now - u) * rate < limit
                }
        return None if allowed else tokens


# KEYS[1]: the bucket (a hash: t = tokens, u = time of update in seconds, Redis's clock, so that
# every app server agrees); ARGV[1]: the limit; ARGV[2]: tokens per second; ARGV[3]: TTL in seconds.
# Returns {1 (allowed) or 0, tokens left as a string (Lua numbers become integers in a reply)}.
_TAKE = """
local limit = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local bucket = redis.call('HMGET', KEYS[1], 't', 'u')
local tokens = tonumber(bucket[1])
local updated = tonumber(bucket[2])
if tokens == nil or updated == nil then
  tokens = limit
  updated = now
end
tokens = math.min(limit, tokens + math.max(0, now - updated) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'u', tostring(now))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return {allowed, tostring(tokens)}
"""


class RedisBuckets:
    """Buckets in Redis, shared by every worker and app server; fails open while Redis is away.

    One check is one EVALSHA of `_TAKE` (redis-py's registered script: loaded once, reloaded after a
    Redis restart). Keys expire when their bucket would be full again (`REFILL_SECONDS` + 1). After
    an error, Redis is left alone for `retry_seconds` (a circuit breaker: an outage costs no socket
    timeout per request), then one request tries it again."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = KEY_PREFIX,
        timeout: float = 0.2,
        retry_seconds: float = 5.0,
    ) -> None:
        self.prefix = prefix
        self.retry_seconds = retry_seconds
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),  # the default retries up to 10 times with backoff
            retry_on_timeout=False,
        )
        self._script = self._client.register_script(_TAKE)
        self._lock = threading.Lock()
        self._down_since: float | None = None  # monotonic time of the first failure of this outage
        self._next_try = 0.0

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def take(self, key: str, limit: int) -> float | None:
        if self._down_since is not None and not self._may_try():
            return None  # fail open without touching Redis
        ttl = int(REFILL_SECONDS) + 1
        try:
            allowed, tokens = self._script(
                keys=[self.prefix + key], args=[limit, limit / REFILL_SECONDS, ttl]
            )
        except (redis.RedisError, OSError) as exc:
            self._failed(exc)
            return None
        if self._down_since is not None:
            self._recovered()
        return None if int(allowed) == 1 else float(tokens)

    def close(self) -> None:
        self._client.close()

    def _may_try(self) -> bool:
        """While Redis is down: True for one caller every `retry_seconds`."""
        with self._lock:
            now = time.monotonic()
            if now < self._next_try:
                return False
            self._next_try = now + self.retry_seconds
            return True

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self._next_try = time.monotonic() + self.retry_seconds
            if self._down_since is None:
                self._down_since = time.monotonic()
                log.warning(
                    "rate_limit_redis_unreachable: %s; chat is not rate-limited until Redis is back "
                    "(next try in %.0f s)",
                    type(exc).__name__,
                    self.retry_seconds,
                )

    def _recovered(self) -> None:
        with self._lock:
            if self._down_since is not None:
                log.warning(
                    "rate_limit_redis_reachable again after %.1f s", time.monotonic() - self._down_since
                )
                self._down_since = None


def per_worker_warning(workers: int, redis_url: str | None) -> str | None:
    """The start-up warning of `policybot serve --workers N` (N > 1) without Redis, else None."""
    if workers <= 1 or redis_url:
        return None
    return (
        f"警告：未设置 POLICYBOT_REDIS_URL，{workers} 个工作进程各自计数，访问频率限制按进程生效"
        f"（实际上限最多为设置值的 {workers} 倍）。"
        f"Warning: POLICYBOT_REDIS_URL is not set: rate limits are per worker, so a client may get up "
        f"to {workers} times the configured limit; set it to share the limits."
    )


class RateLimiter:
    def __init__(
        self,
        *,
        per_ip: int,
        per_key: int,
        trusted_proxies: list[str],
        redis_url: str | None = None,
        store: BucketStore | None = None,
    ) -> None:
        self.per_ip = per_ip
        self.per_key = per_key
        self.trusted_proxies = tuple(trusted_proxies)
        trusted_networks(self.trusted_proxies)  # a bad entry fails at start-up, not on a request
        if store is None:
            store = RedisBuckets(redis_url) if redis_url else MemoryBuckets()
        self.store = store

    def check_ip(self, request: Request) -> None:
        self._hit("ip:" + (client_ip(request, self.trusted_proxies) or "unknown"), self.per_ip)

    def check_key(self, key: str) -> None:
        self._hit(key, self.per_key)

    def _hit(self, key: str, limit: int) -> None:
        if limit <= 0:
            return
        tokens = self.store.take(key, limit)
        if tokens is not None:
            retry = max(1, math.ceil((1.0 - tokens) / (limit / REFILL_SECONDS)))
            raise HTTPException(429, "请求过于频繁，请稍后再试。", headers={"Retry-After": str(retry)})
