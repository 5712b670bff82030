"""Service links (办事链接) and their health: this module owns the `link_status` rows, the collection of
the links to check (the 办事链接 of FAQs that are not retired, a policy's document link and its
办事链接, each with the drafting unit that maintains it), the checker (`LinkChecker.run`: HEAD, then GET
when the server refuses HEAD with 405/501, redirects followed, a timeout per request, a minimum
interval between requests to one host; intranet and local addresses are checked like any other, since
一网通办 entries often live on the 政务外网), the rule "broken after two failed checks in a row, cleared
by one good check", and `LinkHealth`, the in-memory set of broken links the answering path reads.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from knowledge.db import transaction
from knowledge.models import Faq, LinkStatus, Policy, utcnow

log = logging.getLogger(__name__)

FAILS_TO_BREAK = 2
USER_AGENT = "policybot-linkcheck/1.0"


@dataclass(frozen=True)
class LinkUse:
    """Where a link is used: an FAQ or a policy, and the drafting unit that maintains it."""

    kind: str  # faq / policy
    id: str
    label: str  # the FAQ's question or the policy's title
    unit: str | None


@dataclass(frozen=True)
class Probe:
    """The outcome of one check of one link."""

    ok: bool
    code: int | None = None
    error: str | None = None
    final_url: str | None = None


@dataclass(frozen=True)
class LinkRecord:
    url: str
    broken: bool
    fails: int
    last_code: int | None
    last_error: str | None
    final_url: str | None
    checked_at: dt.datetime | None
    ok_at: dt.datetime | None
    broken_since: dt.datetime | None
    uses: tuple[LinkUse, ...] = ()

    @property
    def units(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(u.unit for u in self.uses if u.unit))

    def problem(self) -> str:
        """A short Chinese description of the last failure."""
        if self.last_code is not None and self.last_code >= 400:
            return f"HTTP {self.last_code}"
        return self.last_error or ""

    def as_dict(self) -> dict[str, object]:
        def iso(v: dt.datetime | None) -> str | None:
            return v.isoformat(timespec="seconds") if v else None

        return {
            "url": self.url,
            "broken": self.broken,
            "fails": self.fails,
            "last_code": self.last_code,
            "last_error": self.last_error,
            "final_url": self.final_url,
            "checked_at": iso(self.checked_at),
            "ok_at": iso(self.ok_at),
            "broken_since": iso(self.broken_since),
            "uses": [u.__dict__ for u in self.uses],
        }


@dataclass
class CheckRun:
    checked: int = 0
    ok: int = 0
    failed: int = 0
    newly_broken: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    results: dict[str, Probe] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "checked": self.checked,
            "ok": self.ok,
            "failed": self.failed,
            "newly_broken": self.newly_broken,
            "recovered": self.recovered,
            "broken": self.broken,
            "results": {u: p.__dict__ for u, p in self.results.items()},
        }


def collect_links(s: Session) -> dict[str, list[LinkUse]]:
    """Every link to check, with where it is used."""
    out: dict[str, list[LinkUse]] = {}
    for fid, q, unit, url in s.execute(
        select(Faq.id, Faq.question, Faq.unit, Faq.service_url).where(
            Faq.service_url.is_not(None), Faq.status != "retired"
        )
    ):
        if url:
            out.setdefault(url, []).append(LinkUse("faq", fid, q, unit))
    for pid, title, issuer, url, service in s.execute(
        select(Policy.id, Policy.title, Policy.issuer, Policy.url, Policy.service_url)
    ):
        for u in (url, service):
            if u:
                out.setdefault(u, []).append(LinkUse("policy", pid, title, issuer))
    return out


def _error_text(exc: Exception) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "连接超时"
    if isinstance(exc, httpx.TooManyRedirects):
        return "重定向次数过多"
    if isinstance(exc, httpx.ConnectError):
        return "无法连接"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return "链接格式无效"
    return f"请求失败（{type(exc).__name__}）"


class LinkChecker:
    """Checks every link once per run and records the result."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        timeout: float = 10.0,
        host_interval: float = 1.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.sessions = sessions
        self.timeout = timeout
        self.host_interval = host_interval
        self._transport = transport
        self._clock = clock
        self._sleep = sleep
        self._last: dict[str, float] = {}

    def probe(self, client: httpx.Client, url: str) -> Probe:
        """HEAD, then GET when HEAD is refused (405/501); redirects followed; 2xx is good."""
        if urlsplit(url).scheme.lower() not in ("http", "https"):
            return Probe(False, error="链接格式无效")
        try:
            r = client.head(url)
            if r.status_code in (405, 501):
                with client.stream("GET", url) as g:
                    r = g
            return Probe(200 <= r.status_code < 300, r.status_code, None, str(r.url))
        except httpx.HTTPError as exc:
            return Probe(False, None, _error_text(exc), None)

    def _wait_for(self, host: str) -> None:
        last = self._last.get(host)
        if last is not None and self.host_interval > 0:
            wait = last + self.host_interval - self._clock()
            if wait > 0:
                self._sleep(wait)
        self._last[host] = self._clock()

    def run(self, urls: Iterable[str] | None = None) -> CheckRun:
        """Check the links (all links in use by default) and record each result; links no longer
        in use are forgotten."""
        with self.sessions() as s:
            in_use = collect_links(s)
        todo = list(dict.fromkeys(urls if urls is not None else in_use))
        run = CheckRun()
        headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
        with httpx.Client(
            timeout=self.timeout,
            follow_redirects=True,
            max_redirects=10,
            headers=headers,
            transport=self._transport,
            trust_env=False,  # an intranet link must not go out through a proxy from the environment
        ) as client:
            for url in todo:
                self._wait_for(urlsplit(url).netloc.lower())
                run.results[url] = self.probe(client, url)
        now = utcnow()
        with transaction(self.sessions) as s:
            for url, p in run.results.items():
                self._record(s, url, p, now, run)
            if urls is None:
                s.execute(delete(LinkStatus).where(LinkStatus.url.not_in(list(in_use) or [""])))
            run.broken = sorted(s.execute(select(LinkStatus.url).where(LinkStatus.broken)).scalars())
        log.info(
            "link check checked=%d ok=%d failed=%d broken=%d",
            run.checked,
            run.ok,
            run.failed,
            len(run.broken),
        )
        return run

    @staticmethod
    def _record(s: Session, url: str, p: Probe, now: dt.datetime, run: CheckRun) -> None:
        row = s.get(LinkStatus, url)
        if row is None:
            row = LinkStatus(url=url, host=urlsplit(url).netloc.lower()[:255], fails=0, broken=False)
            s.add(row)
        run.checked += 1
        row.checked_at = now
        row.last_code = p.code
        row.last_error = (p.error or "")[:200] or None
        row.final_url = (p.final_url or "")[:500] or None
        if p.ok:
            run.ok += 1
            if row.broken:
                run.recovered.append(url)
            row.fails = 0
            row.broken = False
            row.broken_since = None
            row.ok_at = now
        else:
            run.failed += 1
            row.fails = (row.fails or 0) + 1
            if row.fails >= FAILS_TO_BREAK and not row.broken:
                row.broken = True
                row.broken_since = now
                run.newly_broken.append(url)
        s.flush()


class LinkStore:
    """Reading the link health: every link in use with its status and where it is used."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def list(self, *, broken: bool = False, unit: str | None = None) -> list[LinkRecord]:
        with self.sessions() as s:
            uses = collect_links(s)
            rows = {r.url: r for r in s.execute(select(LinkStatus)).scalars()}
        out: list[LinkRecord] = []
        for url in sorted(uses):
            r = rows.get(url)
            rec = LinkRecord(
                url,
                bool(r and r.broken),
                r.fails if r else 0,
                r.last_code if r else None,
                r.last_error if r else None,
                r.final_url if r else None,
                r.checked_at if r else None,
                r.ok_at if r else None,
                r.broken_since if r else None,
                tuple(uses[url]),
            )
            if broken and not rec.broken:
                continue
            if unit is not None and unit not in rec.units:
                continue
            out.append(rec)
        return out


class LinkHealth:
    """The set of broken links, refreshed at most every `refresh_seconds` (one small query); while
    the database is unreachable the last set stays in use."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        refresh_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._broken: frozenset[str] = frozenset()
        self._at: float | None = None

    def is_broken(self, url: str) -> bool:
        return url in self.broken()

    def broken(self, *, force: bool = False) -> frozenset[str]:
        now = self._clock()
        with self._lock:
            if not force and self._at is not None and now - self._at < self.refresh_seconds:
                return self._broken
            self._at = now
            try:
                with self.sessions() as s:
                    self._broken = frozenset(
                        s.execute(select(LinkStatus.url).where(LinkStatus.broken)).scalars()
                    )
            except SQLAlchemyError as exc:
                log.warning("link health refresh skipped: %s", type(exc).__name__)
            return self._broken
