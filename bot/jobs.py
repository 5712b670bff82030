"""Scheduled jobs: a small in-process scheduler that every worker runs, and the database claim that
makes exactly one of them (across processes and machines) run a job for each of its periods.

A job is registered with `Scheduler.register(name, schedule, fn)`; the schedule is a Beijing-time
spec: ``"MON 08:00"`` (weekly; MON..SUN or 周一..周日), ``"DAILY 03:30"`` (or just ``"03:30"``), or
``"EVERY 15m"`` (every N minutes, aligned to the day). Each due slot has a period key (its local
start, ``2026-11-23T08:00``); running a slot first INSERTs ``job_run(name, period_key)``, whose unique
constraint lets one worker win. A claim whose worker died (still ``running`` after the job's
`stale_after`, or at once when it was a process of this machine that is gone: `bot.workers`) may
be taken over, and a failed run is retried after `retry_after` up to `max_attempts`. A missed slot (the service was down at 08:00) runs when the service is next up,
until the following slot is due. `create_app` builds the scheduler, registers the weekly report
(and other helpers' jobs) and starts the thread when `POLICYBOT_JOBS_ENABLED` is true.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot import workers
from bot.models import JobRun
from knowledge.errors import InvalidInput
from knowledge.models import CHINA_TZ, to_db_time

log = logging.getLogger("policybot.jobs")

RUNNING, DONE, FAILED = "running", "done", "failed"
_DAYS = {
    "MON": 0,
    "TUE": 1,
    "WED": 2,
    "THU": 3,
    "FRI": 4,
    "SAT": 5,
    "SUN": 6,
    "周一": 0,
    "周二": 1,
    "周三": 2,
    "周四": 3,
    "周五": 4,
    "周六": 5,
    "周日": 6,
    "周天": 6,
}
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_EVERY = re.compile(r"^EVERY\s+(\d{1,4})\s*(M|MIN|MINUTES?)$")


@dataclass(frozen=True)
class Schedule:
    """When a job is due, in Beijing time. kind: weekly (weekday, hour, minute), daily (hour,
    minute) or every (minutes)."""

    kind: str
    weekday: int = 0
    hour: int = 0
    minute: int = 0
    minutes: int = 0
    spec: str = ""

    @classmethod
    def parse(cls, spec: str) -> Schedule:
        text = re.sub(r"\s+", " ", (spec or "").strip().upper())
        bad = InvalidInput(
            f'定时设置格式不正确：{spec!r}（应为 "MON 08:00"、"DAILY 03:30" 或 "EVERY 15m"）',
            f"bad schedule {spec!r}",
        )
        if not text:
            raise bad
        m = _EVERY.match(text)
        if m:
            n = int(m.group(1))
            if not 1 <= n <= 1440 or 1440 % n:
                raise InvalidInput(
                    f"间隔分钟数应能整除一天（1440）：{n}", f"every {n} minutes does not divide a day"
                )
            return cls("every", minutes=n, spec=text)
        parts = text.split(" ")
        if len(parts) == 1:
            parts = ["DAILY", parts[0]]
        if len(parts) != 2:
            raise bad
        day, clock = parts
        t = _TIME.match(clock)
        if not t:
            raise bad
        hour, minute = int(t.group(1)), int(t.group(2))
        if day == "DAILY":
            return cls("daily", hour=hour, minute=minute, spec=text)
        if day not in _DAYS:
            raise bad
        return cls("weekly", weekday=_DAYS[day], hour=hour, minute=minute, spec=text)

    def last_slot(self, now: dt.datetime) -> dt.datetime:
        """The latest due slot at or before `now` (aware Beijing time)."""
        local = now.astimezone(CHINA_TZ) if now.tzinfo else now.replace(tzinfo=dt.UTC).astimezone(CHINA_TZ)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        if self.kind == "every":
            step = dt.timedelta(minutes=self.minutes)
            return midnight + step * ((local - midnight) // step)
        slot = midnight.replace(hour=self.hour, minute=self.minute)
        if self.kind == "daily":
            return slot if slot <= local else slot - dt.timedelta(days=1)
        slot -= dt.timedelta(days=(local.weekday() - self.weekday) % 7)
        return slot if slot <= local else slot - dt.timedelta(weeks=1)

    @staticmethod
    def key(slot: dt.datetime) -> str:
        return slot.astimezone(CHINA_TZ).strftime("%Y-%m-%dT%H:%M")


@dataclass(frozen=True)
class JobContext:
    """What a job function gets: its name, the slot it runs for and the current time."""

    name: str
    period_key: str
    slot: dt.datetime  # aware, Beijing time
    now: dt.datetime  # aware UTC
    attempt: int


JobFn = Callable[[JobContext], "str | None"]


@dataclass
class Job:
    name: str
    schedule: Schedule
    fn: JobFn
    stale_after: dt.timedelta = dt.timedelta(hours=1)  # a claim this old with no result was abandoned
    retry_after: dt.timedelta = dt.timedelta(minutes=15)  # wait after a failure
    max_attempts: int = 3


@dataclass(frozen=True)
class RunRecord:
    name: str
    period_key: str
    status: str
    worker: str
    attempts: int
    started_at: dt.datetime  # naive UTC
    finished_at: dt.datetime | None
    detail: str


def recent_runs(sessions: sessionmaker[Session], name: str | None = None, limit: int = 20) -> list[RunRecord]:
    """The latest runs (newest first), of one job or of all."""
    stmt = select(JobRun).order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(limit)
    if name:
        stmt = stmt.where(JobRun.name == name)
    with sessions() as s:
        return [
            RunRecord(
                r.name, r.period_key, r.status, r.worker, r.attempts, r.started_at, r.finished_at, r.detail
            )
            for r in s.scalars(stmt)
        ]


@dataclass
class Scheduler:
    """The registry of jobs of one process and the thread that runs them when due."""

    sessions: sessionmaker[Session]
    tick_seconds: float = 30.0
    worker: str = field(default_factory=workers.identity)
    jobs: dict[str, Job] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def register(
        self,
        name: str,
        period: str | Schedule,
        fn: JobFn,
        *,
        stale_after: dt.timedelta | None = None,
        retry_after: dt.timedelta | None = None,
        max_attempts: int = 3,
    ) -> Job:
        """Add a job (`period`: a schedule spec such as "MON 08:00" or "DAILY 03:30")."""
        if not re.fullmatch(r"[a-z][a-z0-9_.-]{0,59}", name or ""):
            raise ValueError(f"bad job name {name!r}")
        if name in self.jobs:
            raise ValueError(f"job {name!r} registered twice")
        schedule = period if isinstance(period, Schedule) else Schedule.parse(period)
        job = Job(name, schedule, fn, max_attempts=max(1, max_attempts))
        if stale_after is not None:
            job.stale_after = stale_after
        if retry_after is not None:
            job.retry_after = retry_after
        self.jobs[name] = job
        return job

    # --- claiming --------------------------------------------------------------------------------
    def claim(self, job: Job, period_key: str, now: dt.datetime) -> int | None:
        """Take the run of `job` for `period_key`; the attempt number, or None when another worker
        has it (running, done, or failed and not yet to be retried)."""
        at = to_db_time(now)
        try:
            with self.sessions.begin() as s:
                s.execute(
                    insert(JobRun).values(
                        name=job.name,
                        period_key=period_key,
                        status=RUNNING,
                        worker=self.worker,
                        attempts=1,
                        started_at=at,
                        detail="",
                    )
                )
            return 1
        except IntegrityError:
            pass
        # Someone holds it: take over only an abandoned claim or a failure due for a retry. The
        # conditional UPDATE is atomic, so of several workers trying, one gets rowcount 1.
        with self.sessions.begin() as s:
            row = s.execute(
                select(JobRun).where(JobRun.name == job.name, JobRun.period_key == period_key)
            ).scalar_one()
            if row.attempts >= job.max_attempts:
                return None
            attempt = row.attempts + 1
            # a claim of a worker of this machine that is gone is abandoned now, not after stale_after
            abandoned_at = at if workers.gone(row.worker) else at - job.stale_after
            result = s.execute(
                update(JobRun)
                .where(
                    JobRun.id == row.id,
                    JobRun.attempts == row.attempts,
                    or_(
                        (JobRun.status == RUNNING) & (JobRun.started_at <= abandoned_at),
                        (JobRun.status == FAILED) & (JobRun.finished_at < at - job.retry_after),
                    ),
                )
                .values(status=RUNNING, worker=self.worker, attempts=attempt, started_at=at, finished_at=None)
                .execution_options(synchronize_session=False)
            )
            took = bool(result.rowcount)  # type: ignore[attr-defined]
        if took:
            log.warning("job %s %s: taking over (attempt %d)", job.name, period_key, attempt)
            return attempt
        return None

    def _finish(self, job: Job, period_key: str, status: str, detail: str, at: dt.datetime) -> None:
        with self.sessions.begin() as s:
            s.execute(
                update(JobRun)
                .where(
                    JobRun.name == job.name,
                    JobRun.period_key == period_key,
                    JobRun.worker == self.worker,
                )
                .values(status=status, finished_at=at, detail=detail[:4000])
            )

    # --- running ---------------------------------------------------------------------------------
    def run_job(
        self, job: Job, now: dt.datetime | None = None, *, slot: dt.datetime | None = None
    ) -> str | None:
        """Run `job` for its latest due slot (or `slot`) if this worker wins the claim; the run's
        status (done / failed) or None when it was not ours to run."""
        when = now or dt.datetime.now(dt.UTC)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        the_slot = slot or job.schedule.last_slot(when)
        key = Schedule.key(the_slot)
        attempt = self.claim(job, key, when)
        if attempt is None:
            return None
        log.info("job %s %s: started by %s", job.name, key, self.worker)
        began = time.monotonic()

        def finished_at() -> dt.datetime:  # on the caller's clock (tests pass a fixed `now`)
            return to_db_time(when) + dt.timedelta(seconds=time.monotonic() - began)

        try:
            detail = job.fn(JobContext(job.name, key, the_slot.astimezone(CHINA_TZ), when, attempt)) or ""
        except Exception as exc:  # a failing job must not kill the scheduler thread
            log.exception("job %s %s failed", job.name, key)
            self._finish(job, key, FAILED, f"{exc.__class__.__name__}: {exc}", finished_at())
            return FAILED
        self._finish(job, key, DONE, detail, finished_at())
        log.info("job %s %s: done %s", job.name, key, detail)
        return DONE

    def run_due(self, now: dt.datetime | None = None) -> dict[str, str | None]:
        """One pass over every job: run those whose latest slot this worker can claim."""
        out: dict[str, str | None] = {}
        for job in list(self.jobs.values()):
            if self._stop.is_set():
                break
            try:
                out[job.name] = self.run_job(job, now)
            except Exception as exc:  # the database is away: try again on the next tick
                log.warning("job %s: could not claim (%s); next tick retries", job.name, type(exc).__name__)
                out[job.name] = None
        return out

    def start(self) -> None:
        if self._thread is not None or not self.jobs:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="policybot-jobs", daemon=True)
        self._thread.start()
        log.info(
            "scheduler started (%s): %s",
            self.worker,
            ", ".join(f"{j.name} {j.schedule.spec}" for j in self.jobs.values()),
        )

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_due()
            self._stop.wait(self.tick_seconds)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


__all__ = ["JobContext", "RunRecord", "Schedule", "Scheduler", "recent_runs"]
