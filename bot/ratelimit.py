"""Request rate limits per client IP and per conversation (requests per minute, 0 disables).

Each key has a token bucket holding up to the per-minute limit and refilled continuously at
limit/60 per second: a client may burst up to the limit, then gets limit per minute, with no
doubling at a window boundary. Buckets are per process; with N workers the effective limit is at
most N times the setting. The client IP is `handoff.clientip.client_ip` (X-Forwarded-For only from
trusted proxy addresses or networks), the same as for the console lockouts and the logs.
"""

from __future__ import annotations

import math
import threading
import time

from fastapi import HTTPException, Request

from handoff.clientip import client_ip, trusted_networks


class RateLimiter:
    def __init__(self, *, per_ip: int, per_key: int, trusted_proxies: list[str]) -> None:
        self.per_ip = per_ip
        self.per_key = per_key
        self.trusted_proxies = tuple(trusted_proxies)
        trusted_networks(self.trusted_proxies)  # a bad entry fails at start-up, not on a request
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, monotonic time of update)
        self._lock = threading.Lock()

    def check_ip(self, request: Request) -> None:
        self._hit("ip:" + (client_ip(request, self.trusted_proxies) or "unknown"), self.per_ip)

    def check_key(self, key: str) -> None:
        self._hit(key, self.per_key)

    def _hit(self, key: str, limit: int) -> None:
        if limit <= 0:
            return
        rate = limit / 60.0  # tokens per second
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
        if not allowed:
            retry = max(1, math.ceil((1.0 - tokens) / rate))
            raise HTTPException(429, "请求过于频繁，请稍后再试。", headers={"Retry-After": str(retry)})
