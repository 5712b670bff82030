"""Dashboard figures on a seeded query log and seeded tickets, on SQLite and PostgreSQL: Beijing-time
day boundaries, per-channel daily counts, outcome rates, top FAQs with ratings, the ticket figures of
handoff.stats (received / answered / late, the working-day median time to reply); the CSV export (formula-escaped); the page
and its access by role."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from bot.app import create_app
from handoff.dashboard import build_dashboard, dashboard_csv, parse_range
from handoff.models import Ticket
from handoff.sla import WorkCalendar
from knowledge.db import make_sessionmaker
from knowledge.errors import InvalidInput
from knowledge.faqs import FaqStore
from knowledge.usage import QueryLogStore
from tests.bot.conftest import demo_template, demo_url, make_settings  # noqa: F401  (fixtures)
from tests.handoff.console_helpers import signed_in
from tests.handoff.report_seed import seed_week

START, END = dt.date(2026, 3, 9), dt.date(2026, 3, 15)  # Monday to Sunday, no holidays
TODAY = dt.date(2026, 3, 20)


def bj(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    """Naive UTC of a Beijing-time instant in 2026."""
    return dt.datetime(2026, month, day, hour, minute) - dt.timedelta(hours=8)


def _ticket(
    no: str, created: dt.datetime, due: dt.date, *, replied: dt.datetime | None = None, status: str = "已答复"
) -> Ticket:
    return Ticket(
        no=no,
        status=status,
        question="问题",
        transcript=[],
        channel="web",
        user_ref="u",
        department="政务公开办公室",
        matched=[],
        due_date=due,
        due_warnings=[],
        created_at=created,
        updated_at=created,
        reply="答复" if replied else None,
        replied_at=replied,
        verify_code="123456",
    )


def _seed(engine: Engine) -> tuple[str, str]:
    sessions = make_sessionmaker(engine)
    faqs = FaqStore(sessions)
    a = faqs.add(by="t", question="=SUM(1)依申请公开多久答复", answer="20个工作日。").id
    b = faqs.add(by="t", question="政府信息公开怎么申请", answer="在线申请。").id
    log = QueryLogStore(sessions)
    rows = [
        ("web", "answer", a, "useful", bj(3, 9, 0, 30)),  # first minute of the range, Beijing time
        ("web", "answer", a, "useless", bj(3, 9, 11)),
        ("web", "answer", b, None, bj(3, 10, 10)),
        ("web", "clarify", None, None, bj(3, 10, 11)),
        ("web", "none", None, None, bj(3, 11, 10)),
        ("web", "handoff", None, None, bj(3, 11, 11)),
        ("wechat", "passage", None, None, bj(3, 9, 12)),
        ("wechat", "answer", a, "useful", bj(3, 15, 23, 59)),  # last minute
        ("web", "command", None, None, bj(3, 10, 9)),  # not a question
        ("web", "answer", b, None, bj(3, 8, 23, 59)),  # the day before
        ("web", "answer", b, None, bj(3, 16, 0, 0)),  # the day after
    ]
    for i, (channel, outcome, faq, rating, at) in enumerate(rows):
        log_id = log.record(
            channel=channel, user_ref=f"u{i}", text="问题", outcome=outcome, faq_id=faq, at=at
        )
        if rating:
            assert log.rate(log_id, rating)
    with sessions.begin() as s:
        s.add_all(
            [
                _ticket("T1", bj(3, 9, 10), dt.date(2026, 3, 16), replied=bj(3, 11, 9)),  # 2 working days
                _ticket(
                    "T2", bj(3, 10, 10), dt.date(2026, 3, 13), replied=bj(3, 17, 9)
                ),  # late, replied after range: 5 working days
                _ticket("T3", bj(3, 13, 20), dt.date(2026, 3, 20), replied=bj(3, 14, 10)),  # Fri -> Sat: 0
                _ticket("T4", bj(3, 11, 10), dt.date(2026, 3, 12), status="办理中"),  # open past due
                _ticket(
                    "T5", bj(3, 2, 10), dt.date(2026, 3, 9), replied=bj(3, 10, 9)
                ),  # 6 working days, late
                _ticket("T6", bj(3, 12, 9), dt.date(2026, 3, 19), replied=bj(3, 12, 15)),  # same day: 0
            ]
        )
    return a, b


def test_dashboard_figures(engine: Engine) -> None:
    a, b = _seed(engine)
    sessions = make_sessionmaker(engine)
    d = build_dashboard(sessions, WorkCalendar(sessions), START, END, today=TODAY)
    assert d.questions == 8
    assert d.channels == ("web", "wechat")
    daily = {day: counts for day, counts in d.daily}
    assert len(daily) == 7
    assert daily[dt.date(2026, 3, 9)] == (2, 1)
    assert daily[dt.date(2026, 3, 10)] == (2, 0)
    assert daily[dt.date(2026, 3, 11)] == (2, 0)
    assert daily[dt.date(2026, 3, 15)] == (0, 1)
    assert dict(d.outcomes) == {"answer": 4, "clarify": 1, "passage": 1, "none": 1, "handoff": 1}
    assert d.rate("answer") == 0.5 and d.rate("handoff") == 1 / 8
    assert [(f.faq_id, f.count, f.useful, f.useless) for f in d.top_faqs] == [(a, 3, 2, 1), (b, 1, 0, 0)]
    assert d.top_faqs[0].question.startswith("=SUM")
    assert (d.useful, d.useless, d.answers) == (2, 1, 4)
    assert d.useful_ratio == pytest.approx(2 / 3) and d.rated_share == 0.75
    # tickets received in the range (handoff.stats, as /board/stats): T1, T2, T3, T4, T6
    t = d.tickets.total
    assert (t.received, t.answered, t.on_time, t.overdue_open, t.late) == (5, 4, 3, 1, 2)
    assert d.tickets_open_overdue == 1
    received = dict(d.tickets.daily_received)
    assert received[dt.date(2026, 3, 9)] == 1 and received[dt.date(2026, 3, 14)] == 0
    assert sum(received.values()) == 5
    assert t.measured == 4  # T2's reply after the range counts: it answers a ticket received in it
    assert t.median_days == 1.0 and t.p90_days == 5 and t.max_days == 5  # durations 0, 0, 2, 5

    lines = list(csv.reader(io.StringIO("".join(dashboard_csv(d)))))
    assert lines[0][0] == "\ufeff统计区间"
    assert ["直接答复", "4", "50.0%"] in lines
    assert [a, "'=SUM(1)依申请公开多久答复", "3", "2", "1"] in lines  # never a formula
    assert ["2026-03-09", "2", "1", "3", "1"] in lines
    assert ["全部", "2026-03", "5", "4", "3", "1", "60.0%", "1.8", "5", "0", "0", "0", "—", "0"] in lines

    empty = build_dashboard(
        sessions, WorkCalendar(sessions), dt.date(2025, 1, 1), dt.date(2025, 1, 3), today=TODAY
    )
    assert empty.questions == 0 and empty.tickets.total.median_days is None and empty.useful_ratio is None
    assert empty.daily[0][1] == ()


def test_parse_range() -> None:
    assert parse_range("", "", today=TODAY) == (TODAY - dt.timedelta(days=29), TODAY)
    assert parse_range("2026-03-01", "2026-03-02") == (dt.date(2026, 3, 1), dt.date(2026, 3, 2))
    for start, end in (("2026-03-05", "2026-03-01"), ("2026-13-01", ""), ("2024-01-01", "2026-01-01")):
        with pytest.raises(InvalidInput):
            parse_range(start, end)


def test_dashboard_page_and_csv(demo_url: str) -> None:  # noqa: F811
    app: FastAPI = create_app(make_settings(demo_url))
    seed_week(app)
    sue = signed_in(app, "sue")
    page = sue.get("/console/dashboard")
    assert page.status_code == 200
    assert "<svg" in page.text and "每日提问量" in page.text and "直接答复率" in page.text
    assert "script" not in page.text.split("<main", 1)[1].lower()  # charts without JavaScript
    r = sue.get("/console/dashboard.csv", params={"start": "2026-01-01", "end": "2026-12-31"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"] and "统计区间" in r.text
    assert (
        sue.get("/console/dashboard", params={"start": "2026-03-05", "end": "2026-03-01"}).status_code == 400
    )
    assert signed_in(app, "rita").get("/console/dashboard").status_code == 403
    assert signed_in(app, "alice").get("/console/dashboard.csv").status_code == 403


def test_dashboard_counts_subscriptions_per_topic(demo_url: str, tmp_path: Path) -> None:  # noqa: F811
    from knowledge.policies.tags import TagCatalogue
    from knowledge.subscriptions import SubscriptionStore

    app: FastAPI = create_app(make_settings(demo_url))
    seed_week(app)  # and the console users
    tags = tmp_path / "tags.csv"
    tags.write_text("标签,同义词\n就业创业,就业\n社会保障,社保\n", encoding="utf-8")
    TagCatalogue(app.state.sessions).import_file(tags)
    store = SubscriptionStore(app.state.sessions)
    for channel, user, tag in [
        ("web", "w1", "就业"),
        ("wechat", "o1", "就业创业"),
        ("email", "a@b.cn", "社保"),
    ]:
        store.add(channel, user, tag)
    page = signed_in(app, "sue").get("/console/dashboard").text
    section = page.split("政策订阅（按主题）", 1)[1].split("</section>", 1)[0]
    assert '<td>就业创业</td><td class="num">2</td>' in section
    assert '<td>社会保障</td><td class="num">1</td>' in section
