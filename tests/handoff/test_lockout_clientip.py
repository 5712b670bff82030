"""Lockouts under parallel bursts, the one client-IP rule behind trusted proxy networks, and the
password strength rules (security issue 11, items 3, 4 and the password part of 8).

A burst of parallel wrong passwords (or board codes) gets at most the limit of checks: every attempt
is reserved atomically before the check. The checks are counted by wrapping the argon2 hasher (the
board's code lookup), and held open while the rest of the burst arrives, so that the right password
sent then is past the limit deterministically. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from starlette.requests import Request

from bot.app import create_app
from bot.ratelimit import RateLimiter
from handoff.clientip import client_ip
from handoff.console import auth
from handoff.console.auth import Accounts, LockedOut, LoginFailed, check_password_policy
from handoff.console.config import ConsoleConfig
from handoff.models import AuditEntry, LoginThrottle
from knowledge.db import make_sessionmaker, upsert
from knowledge.errors import InvalidInput
from tests.bot.conftest import make_settings
from tests.handoff.console_helpers import ORIGIN, PASSWORDS, make_users

PROXY = ("172.18.0.5", 40000)  # a reverse proxy inside the compose default 172.16.0.0/12
NETWORKS = ["172.16.0.0/12"]
CLIENT_A, CLIENT_B = "203.0.113.7", "198.51.100.9"
RIGHT = "Alice-pass-2026"
WRONG = "wrong-Password-1"


class CountingHasher:
    """The real argon2 hasher, counting `verify` calls; `hold(password)` keeps such a check open
    until `gate` is set (the slow hash of a burst, made as slow as the test needs)."""

    def __init__(self, real: Any, hold: Callable[[str], bool] = lambda _p: False) -> None:
        self.real, self.hold = real, hold
        self.calls = 0
        self.gate = threading.Event()
        self._lock = threading.Lock()

    def verify(self, stored: str, password: str) -> bool:
        with self._lock:
            self.calls += 1
        if self.hold(password):
            self.gate.wait(60)
        return bool(self.real.verify(stored, password))

    def hash(self, password: str) -> str:
        return str(self.real.hash(password))

    def check_needs_rehash(self, stored: str) -> bool:
        return bool(self.real.check_needs_rehash(stored))


def _burst(
    n: int, attempt: Callable[[int], Any]
) -> tuple[list[threading.Thread], list[Any], threading.Barrier]:
    """Start n threads that call attempt(i) together; results (or exceptions) land in the list."""
    results: list[Any] = []
    lock = threading.Lock()
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        barrier.wait(30)
        try:
            out: Any = attempt(i)
        except Exception as exc:  # collected and asserted on by the test
            out = exc
        with lock:
            results.append(out)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    return threads, results, barrier


def _wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    time.sleep(0.2)  # anything still on its way gets there


# --- Accounts directly, SQLite and PostgreSQL -------------------------------------------------------------


@pytest.fixture
def accounts(engine: Engine) -> Accounts:
    acc = Accounts(make_sessionmaker(engine), ConsoleConfig(secret_key="test-secret"))
    acc.add_user("alice", RIGHT, role="supervisor", by="test")
    return acc


def test_parallel_wrong_burst_gets_at_most_the_limit_of_checks(
    accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    hasher = CountingHasher(auth._hasher)
    monkeypatch.setattr(auth, "_hasher", hasher)
    threads, results, _ = _burst(30, lambda i: accounts.login("alice", WRONG, ip=f"10.0.0.{i}"))
    for t in threads:
        t.join(60)
    assert len(results) == 30
    assert all(isinstance(r, LoginFailed | LockedOut) for r in results), results
    assert hasher.calls <= 5  # the per-user limit, however parallel
    assert sum(isinstance(r, LockedOut) for r in results) >= 25
    with pytest.raises(LockedOut):
        accounts.login("alice", RIGHT, ip="10.9.9.9")
    assert hasher.calls <= 5


def test_right_password_inside_a_burst_past_the_limit_does_not_log_in(
    accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    hasher = CountingHasher(auth._hasher, hold=lambda p: p != RIGHT)
    monkeypatch.setattr(auth, "_hasher", hasher)
    threads, results, _ = _burst(30, lambda i: accounts.login("alice", WRONG, ip="10.0.0.1"))
    try:
        # five checks are open (held in argon2); the rest of the burst has been refused
        _wait_until(lambda: hasher.calls + len(results) >= 30)
        with pytest.raises(LockedOut):
            accounts.login("alice", RIGHT, ip="10.0.0.1")
        with pytest.raises(LockedOut):  # from another address: the username is what is locked
            accounts.login("alice", RIGHT, ip="10.0.0.2")
    finally:
        hasher.gate.set()
        for t in threads:
            t.join(60)
    assert hasher.calls <= 5
    assert all(isinstance(r, LoginFailed | LockedOut) for r in results), results
    with accounts._sessions() as s:
        row = s.get(LoginThrottle, "user:alice")
        assert row is not None and row.locked_until is not None  # the right password reset nothing


def test_success_gives_the_attempt_back_and_a_lock_is_never_reset(accounts: Accounts) -> None:
    for _ in range(4):
        with pytest.raises(LoginFailed):
            accounts.login("alice", WRONG, ip="10.0.0.1")
    user, cookie, _ = accounts.login("alice", RIGHT, ip="10.0.0.1")
    assert user.username == "alice" and cookie
    with accounts._sessions() as s:
        assert s.get(LoginThrottle, "user:alice") is None  # the user's counter starts again
        ip_row = s.get(LoginThrottle, "ip:10.0.0.1")
        assert ip_row is not None and ip_row.failures == 4  # the IP keeps its 4 failures, not the success
    for _ in range(4):
        with pytest.raises(LoginFailed):
            accounts.login("alice", WRONG, ip="10.0.0.1")
    with pytest.raises(LockedOut):  # the fifth wrong password locks
        accounts.login("alice", WRONG, ip="10.0.0.1")
    with pytest.raises(LockedOut):
        accounts.login("alice", RIGHT, ip="10.0.0.1")
    with accounts._sessions() as s:
        row = s.get(LoginThrottle, "user:alice")
        assert row is not None and row.locked_until is not None
    # the lock runs out: a fresh window, not an immediate re-lock
    with accounts._sessions.begin() as s:
        s.execute(update(LoginThrottle).values(locked_until=auth._utcnow(), window_start=auth._utcnow()))
    accounts.login("alice", RIGHT, ip="10.0.0.1")


def test_a_refused_attempt_does_not_count_on_the_other_key(accounts: Accounts) -> None:
    """A locked username must not turn into a lockout of the office's shared address."""
    for _ in range(5):
        with pytest.raises((LoginFailed, LockedOut)):
            accounts.login("alice", WRONG, ip="10.0.0.1")
    for _ in range(30):
        with pytest.raises(LockedOut):
            accounts.login("alice", RIGHT, ip="10.0.0.1")
    with accounts._sessions() as s:
        ip_row = s.get(LoginThrottle, "ip:10.0.0.1")
        assert ip_row is not None and ip_row.failures == 5 and ip_row.locked_until is None


def test_the_window_restarts_after_the_lockout_period(accounts: Accounts) -> None:
    for _ in range(4):
        with pytest.raises(LoginFailed):
            accounts.login("alice", WRONG, ip="10.0.0.1")
    old = auth._utcnow() - accounts._config.lockout
    with accounts._sessions.begin() as s:
        s.execute(update(LoginThrottle).values(window_start=old))
    for _ in range(4):  # four more are fine: the old ones fell out of the window
        with pytest.raises(LoginFailed):
            accounts.login("alice", WRONG, ip="10.0.0.1")


def test_upsert_helper_inserts_updates_and_returns(engine: Engine) -> None:
    sessions = make_sessionmaker(engine)
    now = auth._utcnow()
    T = LoginThrottle
    for expected in (1, 2, 3):
        with sessions.begin() as s:
            got = upsert(
                s,
                T,
                {"key": "k", "failures": 1, "window_start": now, "locked_until": None},
                index_elements=["key"],
                set_={"failures": T.failures + 1},
                returning=[T.failures],
            ).scalar_one()
            assert got == expected
    with sessions.begin() as s:
        upsert(s, T, {"key": "k", "failures": 9, "window_start": now}, index_elements=["key"])  # do nothing
        assert s.execute(select(T.failures).where(T.key == "k")).scalar_one() == 3


# --- through the HTTP app ----------------------------------------------------------------------------------


@pytest.fixture
def app(db_url: str) -> Iterator[FastAPI]:
    application = create_app(make_settings(db_url, trusted_proxies=NETWORKS))
    with TestClient(application, client=PROXY):  # runs the lifespan: the access log is flushed at the end
        yield application
    application.state.engine.dispose()


@pytest.fixture
def ticket(app: FastAPI) -> Any:
    t = app.state.tickets.open(
        question="碳达峰试点企业有哪些扶持政策？",
        channel="web",
        user_ref="citizen-1",
        transcript=[],
        contact_name="王五",
        contact_phone="13912345678",
        consent=True,
    )
    make_users(app, t.department)
    return t


def _form_client(app: FastAPI, path: str, forwarded: str) -> tuple[TestClient, str]:
    client = TestClient(app, client=PROXY, headers={"X-Forwarded-For": forwarded})
    page = client.get(path)
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token, page.text[:300]
    return client, token.group(1)


def _login(client: TestClient, token: str, username: str, password: str) -> int:
    r = client.post(
        "/console/login",
        headers=ORIGIN,
        follow_redirects=False,
        data={"username": username, "password": password, "token": token},
    )
    return r.status_code


def test_http_login_burst_no_5xx_and_right_password_past_the_limit_refused(
    app: FastAPI, ticket: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hasher = CountingHasher(auth._hasher, hold=lambda p: p != PASSWORDS["alice"])
    monkeypatch.setattr(auth, "_hasher", hasher)
    clients = [_form_client(app, "/console/login", CLIENT_A) for _ in range(30)]
    threads, results, _ = _burst(30, lambda i: _login(*clients[i], "alice", WRONG))
    try:
        _wait_until(lambda: hasher.calls + len(results) >= 30)
        assert _login(*_form_client(app, "/console/login", CLIENT_B), "alice", PASSWORDS["alice"]) == 429
    finally:
        hasher.gate.set()
        for t in threads:
            t.join(60)
    assert set(results) <= {400, 429}, results
    assert hasher.calls <= 5
    assert _login(*_form_client(app, "/console/login", CLIENT_B), "alice", PASSWORDS["alice"]) == 429


def test_http_board_code_burst_checks_at_most_the_limit(
    app: FastAPI, ticket: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = app.state.tickets
    real_lookup = service.lookup
    counter = CountingHasher(None, hold=lambda code: code != ticket.verify_code)

    def lookup(no: str, code: str) -> Any:
        with counter._lock:
            counter.calls += 1
        if counter.hold(code):
            counter.gate.wait(60)
        return real_lookup(no, code)

    monkeypatch.setattr(service, "lookup", lookup)
    wrong = "000000" if ticket.verify_code != "000000" else "111111"
    clients = [_form_client(app, f"/board/{ticket.no}", CLIENT_A) for _ in range(30)]

    def attempt(i: int) -> int:
        client, token = clients[i]
        return client.post(
            f"/board/{ticket.no}", headers=ORIGIN, data={"code": wrong, "token": token}
        ).status_code

    threads, results, _ = _burst(30, attempt)
    try:
        _wait_until(lambda: counter.calls + len(results) >= 30)
        client, token = _form_client(app, f"/board/{ticket.no}", CLIENT_B)
        right = client.post(
            f"/board/{ticket.no}", headers=ORIGIN, data={"code": ticket.verify_code, "token": token}
        )
        assert right.status_code == 429  # the number is locked, even for the right code
    finally:
        counter.gate.set()
        for t in threads:
            t.join(60)
    assert set(results) <= {404, 429}, results
    assert counter.calls <= 10  # board_max_failures


# --- the client IP behind trusted proxy networks -------------------------------------------------------------


def _request(peer: str, *forwarded: str) -> Request:
    headers = [(b"x-forwarded-for", value.encode("latin-1")) for value in forwarded]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers, "client": (peer, 1234)})


def test_client_ip_rule() -> None:
    assert client_ip(_request("172.18.0.5", CLIENT_A), NETWORKS) == CLIENT_A
    assert client_ip(_request("172.18.0.5", f"10.9.9.9, {CLIENT_A}, 172.20.0.2"), NETWORKS) == CLIENT_A
    assert client_ip(_request(CLIENT_B, CLIENT_A), NETWORKS) == CLIENT_B  # untrusted peer: header ignored
    assert client_ip(_request("172.18.0.5", CLIENT_A), []) == "172.18.0.5"
    assert client_ip(_request("172.18.0.5", CLIENT_A), ["172.18.0.5"]) == CLIENT_A  # a single address
    assert client_ip(_request("172.18.0.5"), NETWORKS) == "172.18.0.5"  # no header
    assert client_ip(_request("::ffff:172.18.0.5", CLIENT_A), NETWORKS) == CLIENT_A  # dual-stack socket
    # a second header line is not a way around the proxy's own
    assert client_ip(_request("172.18.0.5", "6.6.6.6", CLIENT_A), NETWORKS) == CLIENT_A
    assert client_ip(_request("172.18.0.5", f"{CLIENT_A}:5123"), NETWORKS) == CLIENT_A  # with a port
    assert client_ip(_request("172.18.0.5", "[2001:db8::7]:443"), NETWORKS) == "2001:db8::7"
    assert client_ip(_request("172.18.0.5", "2001:DB8:0::7"), NETWORKS) == "2001:db8::7"  # canonical form
    # garbage: never an error, never the garbage itself
    assert client_ip(_request("172.18.0.5", f"<script>, {CLIENT_A}"), NETWORKS) == CLIENT_A
    assert client_ip(_request("172.18.0.5", "unknown"), NETWORKS) == "172.18.0.5"
    assert client_ip(_request("172.18.0.5", ",,, ,"), NETWORKS) == "172.18.0.5"
    assert client_ip(_request("172.18.0.5", "x" * 5000), NETWORKS) == "172.18.0.5"
    # every hop trusted: the origin is the leftmost one (a client inside the trusted network)
    assert client_ip(_request("172.18.0.5", "172.20.0.9, 172.19.0.1"), NETWORKS) == "172.20.0.9"
    assert client_ip(Request({"type": "http", "headers": []}), NETWORKS) == ""  # no peer at all


def test_rate_limiter_uses_the_same_rule() -> None:
    limiter = RateLimiter(per_ip=1, per_key=0, trusted_proxies=NETWORKS)
    limiter.check_ip(_request("172.18.0.5", CLIENT_A))
    limiter.check_ip(_request("172.18.0.6", CLIENT_B))  # another client behind another proxy
    with pytest.raises(HTTPException) as refused:
        limiter.check_ip(_request("172.18.0.7", CLIENT_A))
    assert refused.value.status_code == 429
    assert not hasattr(limiter, "client_ip")  # one home for the rule: handoff.clientip


def test_forwarded_client_is_locked_alone_and_audited(app: FastAPI, ticket: Any) -> None:
    a, a_token = _form_client(app, "/console/login", CLIENT_A)
    codes = [_login(a, a_token, f"nobody{i}", WRONG) for i in range(20)]
    assert codes[:19] == [400] * 19 and codes[19] == 429  # the per-IP limit (20) of client A
    assert _login(a, a_token, "bob", PASSWORDS["bob"]) == 429
    b, b_token = _form_client(app, "/console/login", CLIENT_B)
    assert _login(b, b_token, "bob", PASSWORDS["bob"]) == 303  # behind the same proxy, not locked
    with app.state.sessions() as s:
        rows = s.execute(select(AuditEntry.action, AuditEntry.ip, AuditEntry.actor)).all()
    failed = {ip for action, ip, _ in rows if action in ("login_failed", "login_locked")}
    assert failed == {CLIENT_A}
    assert [ip for action, ip, actor in rows if action == "login" and actor == "bob"] == [CLIENT_B]


def test_access_log_and_console_allowlist_use_the_forwarded_client(db_url: str) -> None:
    app = create_app(make_settings(db_url, trusted_proxies=NETWORKS, console_ip_allowlist=["203.0.113.0/24"]))
    try:
        with TestClient(app, client=PROXY) as c:
            assert c.get("/console/login", headers={"X-Forwarded-For": CLIENT_A}).status_code == 200
            assert c.get("/console/login", headers={"X-Forwarded-For": CLIENT_B}).status_code == 403
            assert (
                c.get("/console/login", headers={"X-Forwarded-For": f"{CLIENT_A}, {CLIENT_B}"}).status_code
                == 403
            )
            c.get("/board", headers={"X-Forwarded-For": CLIENT_B})
        from bot.models import AccessLog

        with app.state.sessions() as s:
            ips = {r.path: r.ip for r in s.scalars(select(AccessLog))}
        assert ips.get("/board") == CLIENT_B
    finally:
        app.state.engine.dispose()


# --- password rules --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "Password12",
        "woaini1314",
        "5201314",
        "qq123456",  # the ones in the report
        "Woaini1314!",
        "Aini5201314x",
        "5201314Abc!",
        "Qq12345678!",
        "QQ-87654321a",
        "Zhangwei1990!",
        "Wang.Xiaoming88",
        "OuYang-Fang2020",
        "1qaz2wsx3edc!A",
        "1Qaz2Wsx!x9k",
        "Zaq12wsx!Pm",
        "P@ssw0rd2024",
        "Abcd1234!@#$",
        "Admin@123456",
    ],
)
def test_weak_and_common_passwords_are_refused(password: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_password_policy(password, "li.na")
    assert re.search(r"[\u4e00-\u9fff]", refused.value.user_message)


def test_chinese_messages_name_the_pattern() -> None:
    cases = {
        "Woaini1314!": "1314",
        "Qq12345678!": "QQ",
        "Zhangwei1990!": "拼音",
        "1Qaz2Wsx!x9k": "键盘",
        "P@ssw0rd2024": "常见",
    }
    for password, word in cases.items():
        with pytest.raises(InvalidInput) as refused:
            check_password_policy(password, "li.na")
        assert word in refused.value.user_message, (password, refused.value.user_message)


@pytest.mark.parametrize(
    "password",
    [
        "Correct-horse-7",
        "Training-Plan-2026",
        "Remaining.Bolt.84",
        "政务公开-Kx7#mq",
        "S3cure-passw0rd",
        *PASSWORDS.values(),
        "Alice-new-pass-1",
        "Carol-pass-2026",
        "Root-pass-2026",
        "Amy-pass-2026x",
        "Amy-newpass-2026",
        "Same-pass-2026",
        "Other-pass-2026",
    ],
)
def test_good_passwords_still_pass(password: str) -> None:
    check_password_policy(password, "carol")


def test_a_pinyin_name_with_digits_is_refused_even_as_the_username() -> None:
    with pytest.raises(InvalidInput) as refused:
        check_password_policy("Zhangli-2026!", "zhangli")  # the old example of the browser test
    assert "拼音" in refused.value.user_message
