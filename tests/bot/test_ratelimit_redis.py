"""Rate-limit buckets shared in Redis (bot/ratelimit.py RedisBuckets): two workers share one bucket,
it refills over time, a Redis outage fails open with one warning (the real app still answers 200),
and `policybot serve --workers 2` without Redis warns that the limits are per worker.

Real Redis at 127.0.0.1:6379 (POLICYBOT_TEST_REDIS_URL overrides), one key prefix per test, deleted
afterwards. Skipped when it is unreachable, unless POLICYBOT_REQUIRE_REDIS=1 (.ci/run sets it)."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi import HTTPException
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.ratelimit import KEY_PREFIX, MemoryBuckets, RateLimiter, RedisBuckets, per_worker_warning
from bot.settings import Settings
from tests.bot.conftest import make_settings

REDIS_URL = os.environ.get("POLICYBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRED = os.environ.get("POLICYBOT_REQUIRE_REDIS") == "1"  # set by .ci/run: a skip would hide a gap
CLOSED = "redis://127.0.0.1:1/0"  # nothing listens on port 1
UNREACHABLE = "rate_limit_redis_unreachable"
REACHABLE = "rate_limit_redis_reachable"


def _reachable(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


def _need(ok: bool, reason: str) -> None:
    if ok:
        return
    if REQUIRED:
        pytest.fail(f"{reason} (POLICYBOT_REQUIRE_REDIS=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def redis_url() -> str:
    _need(_reachable(REDIS_URL), f"Redis is not reachable at {REDIS_URL}")
    return REDIS_URL


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test alone; its keys are deleted afterwards."""
    value = f"{KEY_PREFIX}test-{uuid.uuid4().hex[:12]}:"
    yield value
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=value + "*"))
    if keys:
        client.delete(*keys)
    client.close()


def _limiter(url: str, prefix: str, per_key: int, **kw: Any) -> RateLimiter:
    return RateLimiter(
        per_ip=0, per_key=per_key, trusted_proxies=[], store=RedisBuckets(url, prefix=prefix, **kw)
    )


def _allowed(limiter: RateLimiter, key: str, n: int) -> int:
    ok = 0
    for _ in range(n):
        try:
            limiter.check_key(key)
            ok += 1
        except HTTPException as exc:
            assert exc.status_code == 429 and int(exc.headers["Retry-After"]) >= 1
    return ok


def _warnings(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bot.ratelimit" and r.getMessage().startswith(event)]


def test_the_limiter_picks_redis_when_a_url_is_set() -> None:
    assert isinstance(RateLimiter(per_ip=1, per_key=1, trusted_proxies=[]).store, MemoryBuckets)
    limiter = RateLimiter(per_ip=1, per_key=1, trusted_proxies=[], redis_url=CLOSED)
    assert isinstance(limiter.store, RedisBuckets) and limiter.store.prefix == "policybot:rl:"


def test_two_workers_share_one_bucket(redis_url: str, prefix: str) -> None:
    worker_a = _limiter(redis_url, prefix, per_key=5)
    worker_b = _limiter(redis_url, prefix, per_key=5)
    assert _allowed(worker_a, "session:w1", 5) == 5  # the burst, used up on worker A
    with pytest.raises(HTTPException) as refused:
        worker_b.check_key("session:w1")  # worker B sees the same bucket
    assert refused.value.status_code == 429 and refused.value.headers["Retry-After"] == "12"  # 60 s / 5
    assert _allowed(worker_b, "session:w2", 5) == 5  # other keys are independent
    client = redis.Redis.from_url(redis_url)
    ttl = client.ttl(prefix + "session:w1")
    client.close()
    assert 0 < ttl <= 61  # a bucket is gone once it would be full again


def test_refill_over_time(redis_url: str, prefix: str) -> None:
    worker_a = _limiter(redis_url, prefix, per_key=60)  # one token a second
    worker_b = _limiter(redis_url, prefix, per_key=60)
    assert _allowed(worker_a, "k", 70) == 60
    time.sleep(1.1)
    assert _allowed(worker_b, "k", 3) == 1  # one token came back, on Redis's clock
    assert _allowed(worker_a, "k", 1) == 0
    client = redis.Redis.from_url(redis_url)
    seconds, _ = client.time()
    client.hset(prefix + "k", mapping={"t": "0", "u": str(seconds - 600)})  # empty ten minutes ago
    client.close()
    assert _allowed(worker_b, "k", 70) == 60  # refilled, but never beyond the burst size


def test_through_the_real_app_two_workers_share_the_session_limit(
    demo_url: str, redis_url: str, prefix: str
) -> None:
    settings = make_settings(demo_url, redis_url=redis_url, rate_limit_per_session=3)
    apps = [create_app(settings), create_app(settings)]  # two workers, one secret, one Redis
    for app in apps:
        store = app.state.channels["web"].limiter.store
        assert isinstance(store, RedisBuckets)
        store.prefix = prefix
    with TestClient(apps[0]) as a, TestClient(apps[1]) as b:
        sid = a.post("/api/v1/sessions", json={}).json()["session"]
        codes = [a.post("/api/v1/chat", json={"session": sid, "text": "你好"}).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        r = b.post("/api/v1/chat", json={"session": sid, "text": "你好"})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


def test_redis_down_chat_still_answers_with_one_warning(
    demo_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.ratelimit")
    app = create_app(make_settings(demo_url, redis_url=CLOSED, rate_limit_per_session=2, rate_limit_per_ip=2))
    with TestClient(app) as client:
        started = time.monotonic()
        sid = client.post("/api/v1/sessions", json={}).json()["session"]
        codes = [
            client.post("/api/v1/chat", json={"session": sid, "text": "依申请公开多长时间答复"}).status_code
            for _ in range(6)
        ]
        assert codes == [200] * 6  # fail open: above both limits, never a 429 or a 5xx
        assert time.monotonic() - started < 10
    warnings = _warnings(caplog, UNREACHABLE)
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING  # one per outage
    assert "redis://" not in caplog.text  # the URL (it may hold a password) is never logged


def test_circuit_breaker_leaves_redis_alone_between_tries(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot.ratelimit")
    store = RedisBuckets(CLOSED, retry_seconds=60)
    calls = 0
    script = store._script

    def counting(**kw: Any) -> Any:
        nonlocal calls
        calls += 1
        return script(**kw)

    store._script = counting  # type: ignore[assignment]
    assert all(store.take("k", 1) is None for _ in range(50))  # allowed, the limit of 1 ignored
    assert calls == 1 and store.down
    assert len(_warnings(caplog, UNREACHABLE)) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_redis(port: int, tmp: Path) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    end = time.monotonic() + 10
    while not _reachable(f"redis://127.0.0.1:{port}/0"):
        assert server.poll() is None and time.monotonic() < end, "redis-server did not start"
        time.sleep(0.05)
    return server


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    server.wait(timeout=10)


def test_outage_then_recovery_logs_once_each_and_limits_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _need(shutil.which("redis-server") is not None, "redis-server is not installed")
    caplog.set_level(logging.WARNING, logger="bot.ratelimit")
    port = _free_port()
    server = _start_redis(port, tmp_path)  # a throw-away server of this test alone
    try:
        limiter = _limiter(f"redis://127.0.0.1:{port}/0", KEY_PREFIX, per_key=2, retry_seconds=0.3)
        assert _allowed(limiter, "k", 3) == 2
        _stop(server)
        assert _allowed(limiter, "k", 20) == 20  # fail open
        assert len(_warnings(caplog, UNREACHABLE)) == 1
        time.sleep(0.35)
        assert _allowed(limiter, "k", 5) == 5  # a retry fails: still open, no second warning
        assert len(_warnings(caplog, UNREACHABLE)) == 1
        server = _start_redis(port, tmp_path)  # empty (nothing saved), its script cache too
        time.sleep(0.35)
        assert _allowed(limiter, "k", 3) == 2  # EVALSHA reloads the script; limits hold again
        assert len(_warnings(caplog, REACHABLE)) == 1 and len(_warnings(caplog, UNREACHABLE)) == 1
    finally:
        if server.poll() is None:
            _stop(server)


def test_serve_warns_that_limits_are_per_worker_without_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import uvicorn

    from bot.cli.context import Context
    from bot.cli.serve import cmd_serve

    runs: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: runs.append(kw))  # no server is started
    caplog.set_level(logging.WARNING)

    def serve(workers: int, redis_url: str | None) -> list[str]:
        caplog.clear()
        settings = Settings(database_url=f"sqlite:///{tmp_path / 'serve.db'}", redis_url=redis_url)
        args = argparse.Namespace(demo=False, host="127.0.0.1", port=8000, workers=workers, log_level="info")
        assert cmd_serve(args, Context(settings)) == 0
        return [r.getMessage() for r in caplog.records if "POLICYBOT_REDIS_URL" in r.getMessage()]

    [warning] = serve(2, None)
    assert "2 个工作进程" in warning and "rate limits are per worker" in warning
    assert runs[-1]["workers"] == 2
    assert serve(1, None) == []
    assert serve(2, "redis://127.0.0.1:6379/0") == []
    assert per_worker_warning(4, None) and per_worker_warning(4, "redis://x") is None
