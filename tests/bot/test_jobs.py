"""The scheduler (bot/jobs.py): schedule specs and their slots in Beijing time, exactly one run per
period when many workers (threads with two engines on the same database; SQLite and PostgreSQL)
race for it, takeover of an abandoned claim, retry of a failed run, and the thread itself."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import Engine, select

from bot.jobs import JobContext, Schedule, Scheduler, recent_runs
from bot.models import JobRun
from knowledge.db import make_engine, make_sessionmaker
from knowledge.errors import InvalidInput
from knowledge.models import CHINA_TZ

MONDAY_9 = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)  # Monday 09:00 Beijing time


def test_schedule_specs_and_slots() -> None:
    weekly = Schedule.parse("mon 08:00")
    assert weekly.kind == "weekly" and Schedule.key(weekly.last_slot(MONDAY_9)) == "2026-11-23T08:00"
    before = MONDAY_9 - dt.timedelta(hours=2)  # Monday 07:00: last week's slot
    assert Schedule.key(weekly.last_slot(before)) == "2026-11-16T08:00"
    assert Schedule.key(Schedule.parse("周五 18:30").last_slot(MONDAY_9)) == "2026-11-20T18:30"
    assert Schedule.key(Schedule.parse("DAILY 03:30").last_slot(MONDAY_9)) == "2026-11-23T03:30"
    assert Schedule.key(Schedule.parse("10:00").last_slot(MONDAY_9)) == "2026-11-22T10:00"
    every = Schedule.parse("every 15m")
    assert Schedule.key(every.last_slot(MONDAY_9 + dt.timedelta(minutes=22))) == "2026-11-23T09:15"
    assert weekly.last_slot(MONDAY_9).tzinfo == CHINA_TZ
    for bad in ("", "MON", "FRIDAY 08:00", "MON 25:00", "every 7m", "MON 08:00 extra"):
        with pytest.raises(InvalidInput):
            Schedule.parse(bad)


def test_one_run_per_period_across_workers(engine: Engine, db_url: str) -> None:
    """Eight workers (schedulers on two engines, in threads) race for the same slot: one runs."""
    second = make_engine(db_url)
    runs: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def job(ctx: JobContext) -> str:
        with lock:
            runs.append(ctx.period_key)
        time.sleep(0.2)  # still running while the others try
        return "ok"

    schedulers = []
    for i in range(8):
        s = Scheduler(make_sessionmaker(engine if i % 2 else second), worker=f"w{i}")
        s.register("report", "MON 08:00", job)
        schedulers.append(s)
    results: list[str | None] = []

    def worker(s: Scheduler) -> None:
        barrier.wait()
        out = s.run_due(MONDAY_9)["report"]
        with lock:
            results.append(out)

    threads = [threading.Thread(target=worker, args=(s,)) for s in schedulers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert runs == ["2026-11-23T08:00"]
    assert results.count("done") == 1 and results.count(None) == 7
    # the next tick in the same period does nothing; the next period runs again
    assert schedulers[0].run_due(MONDAY_9 + dt.timedelta(hours=1)) == {"report": None}
    assert schedulers[3].run_due(MONDAY_9 + dt.timedelta(weeks=1))["report"] == "done"
    history = recent_runs(make_sessionmaker(engine), "report")
    assert [(r.period_key, r.status, r.detail) for r in history] == [
        ("2026-11-30T08:00", "done", "ok"),
        ("2026-11-23T08:00", "done", "ok"),
    ]
    second.dispose()


def test_abandoned_claim_and_failed_run_are_retried(engine: Engine) -> None:
    sessions = make_sessionmaker(engine)
    calls: list[int] = []

    def flaky(ctx: JobContext) -> str:
        calls.append(ctx.attempt)
        if ctx.attempt < 3:
            raise RuntimeError("smtp down")
        return "sent"

    a = Scheduler(sessions, worker="a")
    job = a.register(
        "mail",
        "DAILY 03:30",
        flaky,
        retry_after=dt.timedelta(minutes=10),
        stale_after=dt.timedelta(minutes=30),
    )
    assert a.run_job(job, MONDAY_9) == "failed"
    assert a.run_job(job, MONDAY_9 + dt.timedelta(minutes=5)) is None  # too early to retry
    assert a.run_job(job, MONDAY_9 + dt.timedelta(minutes=11)) == "failed"
    assert a.run_job(job, MONDAY_9 + dt.timedelta(minutes=22)) == "done"
    assert calls == [1, 2, 3]
    assert a.run_job(job, MONDAY_9 + dt.timedelta(hours=2)) is None  # done stays done

    # a worker that died mid-run: its claim is taken over once it is stale
    b = Scheduler(sessions, worker="b")
    b_job = b.register("slow", "DAILY 03:30", lambda ctx: "b")
    slot = b_job.schedule.last_slot(MONDAY_9)
    assert b.claim(b_job, Schedule.key(slot), MONDAY_9) == 1  # claimed, never finished
    c = Scheduler(sessions, worker="c")
    c_job = c.register("slow", "DAILY 03:30", lambda ctx: "c")
    assert c.run_job(c_job, MONDAY_9 + dt.timedelta(minutes=30)) is None
    assert c.run_job(c_job, MONDAY_9 + dt.timedelta(minutes=61)) == "done"
    with sessions() as s:
        row = s.execute(select(JobRun).where(JobRun.name == "slow")).scalar_one()
        assert (row.worker, row.attempts, row.status, row.detail) == ("c", 2, "done", "c")
    with pytest.raises(ValueError):
        c.register("slow", "DAILY 03:30", lambda ctx: None)


def test_thread_runs_due_jobs_and_stops(sqlite_engine: Engine) -> None:
    s = Scheduler(make_sessionmaker(sqlite_engine), tick_seconds=0.05)
    ran = threading.Event()
    s.register("tick", "EVERY 1m", lambda ctx: ran.set() or "ok")
    s.start()
    try:
        assert ran.wait(5)
        assert s.running
    finally:
        s.stop()
    assert not s.running
