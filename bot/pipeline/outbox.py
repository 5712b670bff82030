"""The durable outbox (投递队列): every message that reaches a citizen later than their own request.

A staff reply today (subscription pushes and "your question now has an answer" notices next) is a
`Delivery` row written by `Outbox.enqueue` in the same transaction as the change that causes it, so
the change and its message commit together or not at all; the row carries data (ticket number,
department, reply), never prose assembled elsewhere. Each worker runs one drain thread
(`Outbox.start`) that claims due rows under a lease (so workers and app servers sharing the
database never push the same row at once, and a worker killed mid-push gives its rows back when the
lease ends), renders each through `render` into a `Reply` for its channel and calls the channel's
`push`. Outcomes: ``sent``; ``impossible`` when the channel raises `PushImpossible` (e.g. WeChat
outside 48 hours without notice consent: recorded once, never retried); otherwise the row waits
``backoff * 2^(n-1)`` (at most an hour) and is tried again, ``failed`` after `attempts`. Pushes per
channel are paced (`rates`, messages per second in each worker). Nothing here runs inside a staff
request: a request only writes the row and wakes this process's drain thread.

Delivery is at least once: a worker killed after the channel accepted a push but before the row was
marked sent pushes it again after the lease (rare, and a duplicate reply beats a lost one). Leases of
a worker of this machine that is known to be gone (`bot.workers.gone`: killed, then the server
restarted) are given back at once rather than when they end.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import event, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot import workers
from bot.conversation import Reply
from bot.models import Delivery
from bot.notifier import PushImpossible
from handoff.privacy import mask
from knowledge.models import utcnow

log = logging.getLogger("policybot.outbox")

PENDING, SENT, FAILED, IMPOSSIBLE = "pending", "sent", "failed", "impossible"
STATUSES = (PENDING, SENT, FAILED, IMPOSSIBLE)
MAX_DELAY = 3600.0
RELEASE_EVERY = 30.0  # seconds between two looks for leases of gone workers
_WAKE = "policybot_outbox_wake"


class _Pushes(Protocol):
    def push(self, user_id: str, reply: Reply) -> None: ...


@dataclass(frozen=True)
class DeliveryView:
    """One outbox row as the CLI and the outcome callback see it."""

    id: int
    kind: str
    channel: str
    user_id: str
    data: dict[str, Any]
    status: str
    attempts: int
    next_at: dt.datetime
    last_error: str | None
    created_at: dt.datetime
    finished_at: dt.datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "channel": self.channel,
            "ticket_no": self.data.get("ticket_no"),
            "status": self.status,
            "attempts": self.attempts,
            "next_at": self.next_at.isoformat(),
            "last_error": self.last_error,
            "created_at": self.created_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


def _view(row: Delivery) -> DeliveryView:
    return DeliveryView(
        row.id,
        row.kind,
        row.channel,
        row.user_id,
        dict(row.data or {}),
        row.status,
        row.attempts,
        row.next_at,
        row.last_error,
        row.created_at,
        row.finished_at,
    )


class Outbox:
    """Durable later messages: `enqueue` in the caller's transaction, `drain` in the background."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        render: Callable[[DeliveryView], Reply],
        channels: Mapping[str, _Pushes] | None = None,
        attempts: int = 12,
        backoff: float = 5.0,
        lease: float = 120.0,
        batch: int = 50,
        rates: Mapping[str, float] | None = None,
        poll: float = 1.0,
        on_outcome: Callable[[DeliveryView, bool, str | None], None] | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        if attempts < 1:
            raise ValueError("outbox attempts must be at least 1")
        self.sessions = sessions
        self.render = render
        self.channels: dict[str, _Pushes] = dict(channels or {})
        self.attempts = attempts
        self.backoff = max(0.0, backoff)
        self.lease = dt.timedelta(seconds=max(1.0, lease))
        self.batch = batch
        self.rates = dict(rates or {})
        self.poll = poll
        self.on_outcome = on_outcome
        self.clock = clock
        self.worker = workers.identity()
        self._released_at = float("-inf")  # monotonic time of the last `release_abandoned`
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_push: dict[str, float] = {}
        self._failing = False
        event.listen(sessions, "after_commit", self._after_commit)
        event.listen(sessions, "after_soft_rollback", self._after_rollback)

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(_WAKE, False):
            self.wake()

    @staticmethod
    def _after_rollback(session: Session, previous_transaction: Any) -> None:
        session.info.pop(_WAKE, None)

    # --- writing ----------------------------------------------------------------------------------
    def enqueue(
        self,
        session: Session,
        *,
        kind: str,
        channel: str,
        user_id: str,
        data: dict[str, Any],
        key: str,
        next_at: dt.datetime | None = None,
    ) -> None:
        """Add one message in `session`'s transaction. `key` names the event (e.g. a ticket's reply at
        one version): the same key never makes a second row, whoever writes it again. `next_at`: not
        before then (subscription pushes held by quiet hours or the daily cap); default now."""
        now = self.clock()
        ins = (pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert)(Delivery)
        session.execute(
            ins.values(
                key=key[:160],
                kind=kind[:30],
                channel=channel[:20],
                user_id=user_id[:128],
                data=data,
                status=PENDING,
                attempts=0,
                next_at=max(now, next_at) if next_at is not None else now,
                created_at=now,
            ).on_conflict_do_nothing(index_elements=["key"])
        )
        session.info[_WAKE] = True  # see _after_commit

    def wake(self) -> None:
        """Drain soon (after a commit that enqueued something in this process)."""
        self._wake.set()

    # --- reading ----------------------------------------------------------------------------------
    def rows(self, *, status: str | None = None, limit: int = 200) -> list[DeliveryView]:
        with self.sessions() as s:
            q = select(Delivery).order_by(Delivery.id.desc()).limit(limit)
            if status:
                q = q.where(Delivery.status == status)
            return [_view(r) for r in s.scalars(q)]

    def counts(self) -> dict[str, int]:
        with self.sessions() as s:
            rows = s.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()
        return {str(k): int(v) for k, v in rows}

    # --- draining ---------------------------------------------------------------------------------
    def _claim(self) -> list[DeliveryView]:
        now = self.clock()
        token = workers.identity()
        due = (
            (Delivery.status == PENDING)
            & (Delivery.next_at <= now)
            & (Delivery.lease_until.is_(None) | (Delivery.lease_until < now))
        )
        with self.sessions.begin() as s:
            ids = list(
                s.scalars(
                    select(Delivery.id).where(due).order_by(Delivery.next_at, Delivery.id).limit(self.batch)
                )
            )
            if not ids:
                return []
            # the WHERE is evaluated again per row: a row another worker claimed meanwhile is skipped
            s.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids), due)
                .values(lease_until=now + self.lease, claimed_by=token)
            )
        with self.sessions() as s:
            rows = s.scalars(select(Delivery).where(Delivery.claimed_by == token).order_by(Delivery.id))
            return [_view(r) for r in rows]

    def release_abandoned(self) -> int:
        """Give back the leases held by workers of this machine that are gone; returns how many."""
        now = self.clock()
        held = (Delivery.status == PENDING) & (Delivery.lease_until >= now)
        with self.sessions.begin() as s:
            holders = s.scalars(select(Delivery.claimed_by).where(held).distinct()).all()
            dead = [h for h in holders if h is not None and workers.gone(h)]
            if not dead:
                return 0
            result = s.execute(
                update(Delivery)
                .where(held, Delivery.claimed_by.in_(dead))
                .values(lease_until=None, claimed_by=None)
            )
        count = int(result.rowcount)  # type: ignore[attr-defined]
        log.warning("outbox_leases_released count=%d holders=%s", count, ",".join(dead))
        return count

    def drain(self) -> int:
        """Push every due row once (in batches); returns how many were sent."""
        sent = 0
        while not self._stop.is_set():
            claimed = self._claim()
            if not claimed:
                return sent
            for d in claimed:
                sent += self._deliver(d)
        return sent

    def _pace(self, channel: str) -> None:
        rate = self.rates.get(channel, 0.0)
        if rate <= 0:
            return
        wait = self._last_push.get(channel, 0.0) + 1.0 / rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last_push[channel] = time.monotonic()

    def _deliver(self, d: DeliveryView) -> int:
        channel = self.channels.get(d.channel)
        error: str | None = None
        final = False
        try:
            if channel is None:
                raise PushImpossible(f"channel {d.channel!r} is not configured on this server")
            self._pace(d.channel)
            channel.push(d.user_id, self.render(d))
        except PushImpossible as exc:
            error, final = f"PushImpossible: {exc}", True
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        attempt = d.attempts + 1
        now = self.clock()
        values: dict[str, Any] = {"attempts": attempt, "lease_until": None, "claimed_by": None}
        if error is None:
            values.update(status=SENT, finished_at=now, last_error=None)
        else:
            error = mask(error)[:500]
            if final or attempt >= self.attempts:
                values.update(status=IMPOSSIBLE if final else FAILED, finished_at=now, last_error=error)
            else:
                delay = min(MAX_DELAY, self.backoff * 2.0 ** (attempt - 1))
                values.update(next_at=now + dt.timedelta(seconds=delay), last_error=error)
        status = values.get("status", PENDING)
        log.log(
            logging.INFO if error is None else logging.WARNING,
            "delivery id=%d kind=%s channel=%s attempt=%d status=%s%s",
            d.id,
            d.kind,
            d.channel,
            attempt,
            status,
            f" error={error}" if error else "",
        )
        if self.on_outcome is not None:
            try:
                self.on_outcome(
                    DeliveryView(
                        d.id,
                        d.kind,
                        d.channel,
                        d.user_id,
                        d.data,
                        status,
                        attempt,
                        values.get("next_at", d.next_at),
                        error,
                        d.created_at,
                        values.get("finished_at"),
                    ),
                    error is None,
                    error,
                )
            except Exception:
                log.exception("delivery_outcome_record_failed id=%d", d.id)
        # The outcome (the ticket's delivery event) is recorded before the row's status, so whoever
        # sees the row settled also finds its event.
        with self.sessions.begin() as s:
            s.execute(update(Delivery).where(Delivery.id == d.id).values(**values))
        return 1 if error is None else 0

    # --- the drain thread ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="policybot-outbox", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if time.monotonic() - self._released_at > RELEASE_EVERY:
                    self._released_at = time.monotonic()
                    self.release_abandoned()
                self.drain()
                if self._failing:
                    self._failing = False
                    log.warning("outbox_drain_resumed")
            except SQLAlchemyError as exc:  # the database is away: rows wait in it, try again later
                if not self._failing:
                    self._failing = True
                    log.warning("outbox_drain_failed: %s; retrying", type(exc).__name__)
            except Exception:
                log.exception("outbox_drain_failed")
            self._wake.wait(self.poll)
            self._wake.clear()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
