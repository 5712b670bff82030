"""A claim made by a worker of this machine that is gone (killed, then the server restarted) is
given back at once: outbox leases and job runs. Claims of live workers and of other machines wait
for their lease or staleness timeout as before."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from bot import workers
from bot.conversation import Reply
from bot.jobs import Scheduler
from bot.models import Delivery, JobRun
from bot.pipeline.outbox import Outbox
from knowledge.models import utcnow


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_gone_knows_dead_local_processes_only() -> None:
    dead = _dead_pid()
    assert workers.gone(f"{workers.node()}:{dead}:abcdef12")
    assert not workers.gone(f"{workers.node()}:{os.getpid()}:abcdef12")  # this very process
    assert not workers.gone(f"{workers.node()}:{os.getppid()}:abcdef12")  # alive
    assert not workers.gone(f"otherhost-123456:{dead}:abcdef12")  # another machine: unknown
    assert not workers.gone(f"{workers.node()}:{dead}")  # an old-style identity
    assert not workers.gone(None) and not workers.gone("")
    assert len(workers.identity()) <= 60


class _Sink:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def push(self, user_id: str, reply: Reply) -> None:
        self.sent.append((user_id, reply.text))


def test_lease_of_a_gone_worker_is_released_at_once(engine: Engine) -> None:
    sessions = sessionmaker(engine)
    sink = _Sink()
    outbox = Outbox(sessions, render=lambda d: Reply("text", d.data["text"]), channels={"web": sink})
    with sessions.begin() as s:
        for n, who in enumerate(("gone", "alive", "remote")):
            outbox.enqueue(s, kind="t", channel="web", user_id=who, data={"text": who}, key=f"k{n}")
    holders = {
        "gone": f"{workers.node()}:{_dead_pid()}:aaaaaaaa",
        "alive": f"{workers.node()}:{os.getppid()}:bbbbbbbb",
        "remote": f"elsewhere-654321:{_dead_pid()}:cccccccc",
    }
    with sessions.begin() as s:
        for who, token in holders.items():
            s.execute(
                update(Delivery)
                .where(Delivery.user_id == who)
                .values(lease_until=utcnow() + dt.timedelta(minutes=2), claimed_by=token)
            )
    assert outbox.drain() == 0  # every row is leased
    assert outbox.release_abandoned() == 1
    assert outbox.drain() == 1 and sink.sent == [("gone", "gone")]
    assert outbox.release_abandoned() == 0
    with sessions() as s:
        left = dict(s.execute(select(Delivery.user_id, Delivery.status)).all())
    assert left == {"gone": "sent", "alive": "pending", "remote": "pending"}


def test_job_run_of_a_gone_worker_is_taken_over_at_once(engine: Engine) -> None:
    sessions = sessionmaker(engine)
    ran: list[str] = []
    first = Scheduler(sessions, worker=f"{workers.node()}:{_dead_pid()}:dddddddd")
    job = first.register("demo.job", "DAILY 03:30", lambda ctx: ran.append("x"))
    now = dt.datetime(2026, 12, 2, 4, 0, tzinfo=dt.UTC)
    assert first.claim(job, "2026-12-02T03:30", now) == 1  # ...and then that worker was killed
    second = Scheduler(sessions)
    second.register("demo.job", "DAILY 03:30", lambda ctx: ran.append("y"))
    later = now + dt.timedelta(minutes=1)  # well inside stale_after (an hour)
    assert second.claim(second.jobs["demo.job"], "2026-12-02T03:30", later) == 2
    alive = Scheduler(sessions, worker=f"{workers.node()}:{os.getppid()}:eeeeeeee")
    alive.register("demo.job", "DAILY 03:30", lambda ctx: None)
    with sessions.begin() as s:  # the taker is alive: nobody takes over from it
        s.execute(update(JobRun).values(worker=alive.worker))
    assert second.claim(second.jobs["demo.job"], "2026-12-02T03:30", later) is None
