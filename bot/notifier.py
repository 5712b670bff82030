"""Retrying delivery of ticket replies. `RetryingNotifier` wraps the notifier that pushes a staff
reply through the ticket's channel (`bot.app.ChannelNotifier`): the first attempt runs inline (the
ticket service records it), a failed attempt is retried in one background thread with exponential
backoff, a bounded number of times, and every retry is recorded on the ticket with
`TicketService.record_delivery`. A channel raises `PushImpossible` for a push that no retry can fix
(e.g. WeChat's 48-hour window has closed and no notice template is configured): it is recorded once
and not retried. The staff reply itself is already committed before any push, so nothing here can
lose it or block the staff member for longer than one attempt.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger("policybot.notifier")


class PushImpossible(Exception):
    """A push that cannot succeed by retrying; the reason is recorded on the ticket."""


class _Inner(Protocol):
    def notify(self, ticket: Any, text: str) -> None: ...


class _Recorder(Protocol):
    def record_delivery(
        self, no: str, *, channel: str, ok: bool, error: str | None = None, attempt: int = 1
    ) -> Any: ...


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    ticket: Any = field(compare=False)
    text: str = field(compare=False)
    attempt: int = field(compare=False)


class RetryingNotifier:
    """`notify(ticket, text)` with bounded retries; `bind(tickets)` once the ticket service exists."""

    def __init__(
        self,
        inner: _Inner,
        *,
        attempts: int = 3,
        backoff: float = 5.0,
        max_pending: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.inner = inner
        self.attempts = attempts
        self.backoff = max(0.0, backoff)
        self.max_pending = max_pending
        self._clock = clock
        self._recorder: _Recorder | None = None
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._running = 0

    def bind(self, recorder: _Recorder) -> None:
        self._recorder = recorder

    @property
    def channels(self) -> Any:
        """The wrapped notifier's channel map (so app wiring can keep using `notifier.channels`)."""
        return getattr(self.inner, "channels", None)

    # --- Notifier -----------------------------------------------------------------------------------
    def notify(self, ticket: Any, text: str) -> None:
        try:
            self.inner.notify(ticket, text)
        except PushImpossible:
            raise
        except Exception:
            if self.attempts > 1:
                self._schedule(ticket, text, attempt=2)
            raise

    # --- background retries ---------------------------------------------------------------------------
    def pending(self) -> int:
        with self._cond:
            return len(self._heap) + self._running

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no retry is queued or running (for tests and graceful shutdown)."""
        end = time.monotonic() + timeout
        with self._cond:
            while self._heap or self._running:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def close(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _delay(self, attempt: int) -> float:
        return float(self.backoff * 2.0 ** max(0, attempt - 2))

    def _schedule(self, ticket: Any, text: str, *, attempt: int) -> None:
        with self._cond:
            if self._stopped:
                return
            if len(self._heap) >= self.max_pending:
                log.error("push_retry_dropped no=%s reason=queue_full", getattr(ticket, "no", "?"))
                return
            heapq.heappush(self._heap, _Job(self._clock() + self._delay(attempt), next(self._seq), ticket, text,
                                            attempt))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="policybot-push-retry", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0].due > self._clock()):
                    timeout = None if not self._heap else max(0.0, self._heap[0].due - self._clock())
                    self._cond.wait(timeout if timeout is None else min(timeout, 1.0))
                if self._stopped:
                    return
                job = heapq.heappop(self._heap)
                self._running += 1
            try:
                self._attempt(job)
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()

    def _attempt(self, job: _Job) -> None:
        no = getattr(job.ticket, "no", "?")
        channel = str(getattr(job.ticket, "channel", "?"))
        error: str | None = None
        retry = False
        try:
            self.inner.notify(job.ticket, job.text)
        except PushImpossible as exc:
            error = f"PushImpossible: {exc}"
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            retry = job.attempt < self.attempts
        if error is None:
            log.info("push_retry_ok no=%s channel=%s attempt=%d", no, channel, job.attempt)
        else:
            log.warning("push_retry_failed no=%s channel=%s attempt=%d will_retry=%s", no, channel, job.attempt,
                        retry)
        if self._recorder is not None:
            try:
                self._recorder.record_delivery(no, channel=channel, ok=error is None, error=error,
                                               attempt=job.attempt)
            except Exception:
                log.exception("push_retry_record_failed no=%s", no)
        if retry:
            self._schedule(job.ticket, job.text, attempt=job.attempt + 1)
