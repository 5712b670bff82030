"""The structured HTTP access log (`access_log` table) and the worker header.

`AccessLogMiddleware` records every request except the health probes: time, method, path without
the query string (query strings can carry session ids and WeChat signatures) and with personal data
in it masked (`/api/v1/tickets/138****5678`), status, duration and the client IP (from
X-Forwarded-For only behind a trusted proxy, like the rate limiter). Rows are queued in memory and
written in batches by one background thread per process (`AccessLogWriter`), so a request never
waits for this write; while the database is away rows wait in the queue, which is bounded (rows
beyond it are dropped and counted in the log); it is flushed at shutdown. Client IPs are personal data: `purge_access_log` deletes rows older than the
retention period (POLICYBOT_ACCESS_LOG_RETENTION_DAYS, run by the daily retention job).
`WorkerHeader` adds ``X-Policybot-Worker: <pid>`` when POLICYBOT_EXPOSE_WORKER is set.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from bot.models import AccessLog
from bot.security import redact
from knowledge.db import delete_before
from knowledge.models import utcnow

log = logging.getLogger("policybot.access")

SKIP_PATHS = frozenset({"/healthz", "/readyz"})
_INSERT = insert(AccessLog.__table__)  # type: ignore[arg-type]


class AccessLogWriter:
    """Batches access-log rows into the database from one daemon thread (started on first use)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        batch: int = 500,
        interval: float = 1.0,
        max_queue: int = 20_000,
    ) -> None:
        self.sessions = sessions
        self.batch = batch
        self.interval = interval
        # a deque, not a queue.Queue: append and popleft are atomic, and no Condition is notified on
        # every request (the writer polls every `interval` seconds)
        self._queue: deque[dict[str, Any]] = deque()
        self.max_queue = max_queue
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._stop = threading.Event()
        self._dropped = 0
        self._held: list[dict[str, Any]] = []  # a batch whose write failed: first in line next time
        self._failing = False

    def add(self, row: dict[str, Any]) -> None:
        if self._stop.is_set():
            return
        if self._thread is None:
            self._start()
        if len(self._queue) < self.max_queue:
            self._queue.append(row)
        else:
            self._dropped += 1
            if self._dropped in (1, 100) or self._dropped % 10_000 == 0:
                log.error("access_log_queue_full dropped=%d", self._dropped)

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="policybot-access-log", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._stop.wait(self.interval)
            self.flush()

    def flush(self) -> int:
        """Write everything queued so far; returns the number of rows written."""
        written = 0
        while True:
            rows, self._held = self._held, []
            while len(rows) < self.batch:
                try:
                    rows.append(self._queue.popleft())
                except IndexError:
                    break
            if not rows:
                return written
            try:
                with self.sessions.begin() as s:
                    s.execute(_INSERT, rows)
                written += len(rows)
            except Exception as exc:  # the database is down: keep the rows (the queue bounds them)
                self._held = rows
                if not self._failing:  # one line per outage, not a traceback every second
                    self._failing = True
                    log.warning(
                        "access_log_write_failed: %s; rows kept in memory until the database is back",
                        type(exc).__name__,
                    )
                return written
            if self._failing:
                self._failing = False
                log.warning("access_log_write_resumed")

    def close(self) -> None:
        """Stop the thread and write what is left (at shutdown)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()


class AccessLogMiddleware:
    """ASGI middleware: one access-log row per HTTP request (health probes excluded)."""

    def __init__(
        self, app: Any, *, writer: AccessLogWriter, client_ip: Callable[[dict[str, Any]], str]
    ) -> None:
        self.app = app
        self.writer = writer
        self.client_ip = client_ip

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") in SKIP_PATHS:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            try:
                self.writer.add(
                    {
                        "at": utcnow(),
                        "method": str(scope.get("method", ""))[:10],
                        "path": redact(str(scope.get("path", "")))[:300],
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        "ip": self.client_ip(scope)[:64],
                    }
                )
            except Exception:
                log.exception("access_log_record_failed")


class WorkerHeader:
    """ASGI middleware: ``X-Policybot-Worker: <pid>`` on every response (shows which worker served)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.value = str(os.getpid()).encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_header(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), (b"x-policybot-worker", self.value)]
            await send(message)

        await self.app(scope, receive, with_header)


def purge_access_log(sessions: sessionmaker[Session], before: dt.datetime, *, batch: int = 10_000) -> int:
    """Delete access-log rows older than `before` (naive UTC), in batches; returns the count."""
    return delete_before(sessions, AccessLog, before, batch=batch)
