"""Request rate limits per client IP and per conversation (requests per minute, 0 disables).

Counters are per process (a fixed one-minute window); with N workers the effective limit is at most
N times the setting. The client IP is taken from X-Forwarded-For only when the direct peer is a
trusted proxy.
"""

from __future__ import annotations

import ipaddress
import threading
import time

from fastapi import HTTPException, Request


class RateLimiter:
    def __init__(self, *, per_ip: int, per_key: int, trusted_proxies: list[str]) -> None:
        self.per_ip = per_ip
        self.per_key = per_key
        self.trusted = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]
        self._counts: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def client_ip(self, request: Request) -> str:
        peer = request.client.host if request.client else "unknown"
        if not self._is_trusted(peer):
            return peer
        forwarded = [p.strip() for p in request.headers.get("x-forwarded-for", "").split(",") if p.strip()]
        for hop in reversed(forwarded):  # the rightmost address not added by a trusted proxy
            if not self._is_trusted(hop):
                return hop
        return peer

    def _is_trusted(self, addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False
        return any(ip in net for net in self.trusted)

    def check_ip(self, request: Request) -> None:
        self._hit("ip:" + self.client_ip(request), self.per_ip)

    def check_key(self, key: str) -> None:
        self._hit(key, self.per_key)

    def _hit(self, key: str, limit: int) -> None:
        if limit <= 0:
            return
        now = time.time()
        window = int(now // 60)
        with self._lock:
            w, n = self._counts.get(key, (window, 0))
            if w != window:
                w, n = window, 0
            n += 1
            self._counts[key] = (w, n)
            if len(self._counts) > 100_000:
                self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
        if n > limit:
            retry = max(1, int(60 - now % 60))
            raise HTTPException(429, "请求过于频繁，请稍后再试。", headers={"Retry-After": str(retry)})
