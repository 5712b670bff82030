"""Service-link checks against a fake server on 127.0.0.1 (no test reaches further): 200, 301 -> 200,
404 and a timeout; a link is broken after two failed runs in a row and cleared by one good run; HEAD
refused with 405 falls back to GET; the answer of an FAQ whose link is broken carries `link_broken`
and no link."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from knowledge.answer import KnowledgeBase
from knowledge.db import make_sessionmaker
from knowledge.faqs import FaqStore
from knowledge.links import LinkChecker, LinkHealth, LinkStore
from tests.fakes.server import serve


class FakeSite:
    """Paths: /ok 200, /moved 301 -> /ok, /missing 404 (until healed), /slow sleeps past the client's
    timeout (until healed), /nohead 405 on HEAD and 200 on GET. Records the methods it saw."""

    def __init__(self) -> None:
        self.healed = False
        self.seen: list[tuple[str, str]] = []

    def app(self) -> Starlette:
        async def handle(request: Request) -> Response:
            path = request.url.path
            self.seen.append((request.method, path))
            if path == "/ok":
                return PlainTextResponse("办事指南")
            if path == "/moved":
                return RedirectResponse("/ok", status_code=301)
            if path == "/missing":
                return PlainTextResponse(
                    "ok" if self.healed else "not found", status_code=200 if self.healed else 404
                )
            if path == "/slow":
                if not self.healed:
                    await asyncio.sleep(2.0)
                return PlainTextResponse("slow")
            if path == "/nohead":
                if request.method == "HEAD":
                    return PlainTextResponse("", status_code=405)
                return PlainTextResponse("got")
            return PlainTextResponse("?", status_code=500)

        routes = [
            Route(p, handle, methods=["GET", "HEAD"])
            for p in ("/ok", "/moved", "/missing", "/slow", "/nohead")
        ]
        return Starlette(routes=routes)


@pytest.fixture
def site() -> Iterator[tuple[FakeSite, str]]:
    fake = FakeSite()
    with serve(fake.app()) as base:
        yield fake, base


def _faqs(engine: Engine, base: str) -> Any:
    sessions = make_sessionmaker(engine)
    faqs = FaqStore(sessions)
    for name in ("ok", "moved", "missing", "slow"):
        faqs.add(
            by="t",
            id=f"f-{name}",
            question=f"{name}事项怎么办理",
            answer=f"请在网上办理{name}事项。",
            unit="区人社局" if name != "slow" else "区医保局",
            service_url=f"{base}/{name}",
        )
    return sessions


def test_two_bad_links_broken_after_two_runs_and_cleared_after_recovery(
    engine: Engine, site: tuple[FakeSite, str]
) -> None:
    fake, base = site
    sessions = _faqs(engine, base)
    checker = LinkChecker(sessions, timeout=0.5, host_interval=0.0)
    first = checker.run()
    assert first.checked == 4 and first.failed == 2 and first.broken == []  # one failure is not broken
    assert first.results[f"{base}/moved"].ok and first.results[f"{base}/moved"].final_url == f"{base}/ok"
    assert first.results[f"{base}/missing"].code == 404
    assert first.results[f"{base}/slow"].error == "连接超时"
    second = checker.run()
    assert sorted(second.broken) == [f"{base}/missing", f"{base}/slow"] == sorted(second.newly_broken)
    store = LinkStore(sessions)
    assert [r.url for r in store.list(broken=True)] == [f"{base}/missing", f"{base}/slow"]
    assert [r.url for r in store.list(broken=True, unit="区医保局")] == [f"{base}/slow"]
    assert store.list(broken=True)[0].problem() == "HTTP 404"
    fake.healed = True
    third = checker.run()
    assert third.broken == [] and sorted(third.recovered) == [f"{base}/missing", f"{base}/slow"]
    assert all(not r.broken and r.fails == 0 for r in store.list())


def test_one_good_check_between_failures_resets_the_count(engine: Engine, site: tuple[FakeSite, str]) -> None:
    fake, base = site
    sessions = _faqs(engine, base)
    checker = LinkChecker(sessions, timeout=0.5, host_interval=0.0)
    url = f"{base}/missing"
    checker.run([url])
    fake.healed = True
    checker.run([url])
    fake.healed = False
    assert checker.run([url]).broken == []  # fail, ok, fail: not two in a row


def test_head_refused_falls_back_to_get_and_host_rate(engine: Engine, site: tuple[FakeSite, str]) -> None:
    fake, base = site
    sessions = make_sessionmaker(engine)
    FaqStore(sessions).add(by="t", question="无HEAD事项", answer="办理。", service_url=f"{base}/nohead")
    waits: list[float] = []
    clock = iter(float(i) * 0.1 for i in range(100))
    checker = LinkChecker(
        sessions, timeout=1.0, host_interval=1.0, clock=lambda: next(clock), sleep=waits.append
    )
    run = checker.run([f"{base}/nohead", f"{base}/ok"])
    assert (
        run.results[f"{base}/nohead"].ok
        and ("HEAD", "/nohead") in fake.seen
        and ("GET", "/nohead") in fake.seen
    )
    assert len(waits) == 1 and 0.8 <= waits[0] <= 1.0  # the second request to the host waited


def test_answer_with_a_broken_link_says_so(engine: Engine, site: tuple[FakeSite, str]) -> None:
    fake, base = site
    sessions = _faqs(engine, base)
    kb = KnowledgeBase(sessions, refresh_seconds=0.0)
    kb.links = LinkHealth(sessions, refresh_seconds=0.0)
    good = kb.ask("ok事项怎么办理")
    assert good.faq_id == "f-ok" and good.service_url == f"{base}/ok" and good.link_broken is False
    checker = LinkChecker(sessions, timeout=0.5, host_interval=0.0)
    checker.run()
    checker.run()
    bad = kb.ask("missing事项怎么办理")
    assert bad.faq_id == "f-missing" and bad.link_broken is True
    d = bad.as_dict()
    assert d["link_broken"] is True and d["service_url"] is None and d["answer"] and d["decision"] == "answer"
    fake.healed = True
    checker.run()
    assert kb.ask("missing事项怎么办理").link_broken is False
