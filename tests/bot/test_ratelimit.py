"""The per-client token bucket: a burst up to the limit, then limit per minute, no window edges."""

from __future__ import annotations

import pytest
from fastapi import HTTPException

from bot import ratelimit
from bot.ratelimit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    c = FakeClock()
    monkeypatch.setattr(ratelimit.time, "monotonic", c)
    return c


def _allowed(limiter: RateLimiter, key: str, n: int) -> int:
    ok = 0
    for _ in range(n):
        try:
            limiter.check_key(key)
            ok += 1
        except HTTPException as exc:
            assert exc.status_code == 429 and int(exc.headers["Retry-After"]) >= 1
    return ok


def test_burst_then_steady_rate(clock: FakeClock) -> None:
    limiter = RateLimiter(per_ip=0, per_key=6, trusted_proxies=[])
    assert _allowed(limiter, "s1", 10) == 6  # the burst
    assert _allowed(limiter, "s2", 1) == 1  # other keys are independent
    clock.now += 10  # 6 per minute: one token every 10 s
    assert _allowed(limiter, "s1", 3) == 1
    clock.now += 5
    assert _allowed(limiter, "s1", 1) == 0
    clock.now += 600  # refilled, but never beyond the burst size
    assert _allowed(limiter, "s1", 10) == 6


def test_no_double_burst_across_a_minute_boundary(clock: FakeClock) -> None:
    limiter = RateLimiter(per_ip=0, per_key=60, trusted_proxies=[])
    clock.now = 59.9  # a fixed window would reset 0.1 s later and allow 120 in 0.2 s
    assert _allowed(limiter, "k", 60) == 60
    clock.now = 60.1
    assert _allowed(limiter, "k", 60) == 0


def test_retry_after_says_when_the_next_token_comes(clock: FakeClock) -> None:
    limiter = RateLimiter(per_ip=0, per_key=2, trusted_proxies=[])
    _allowed(limiter, "k", 2)
    with pytest.raises(HTTPException) as info:
        limiter.check_key("k")
    assert info.value.headers["Retry-After"] == "30"


def test_zero_disables(clock: FakeClock) -> None:
    assert _allowed(RateLimiter(per_ip=0, per_key=0, trusted_proxies=[]), "k", 1000) == 1000
