"""The public handling statistics (/board/stats and its CSV) on SQLite and PostgreSQL: tickets planted
through TicketService (with a clock) in two departments over April and May 2026, with the Labour Day
holiday (1-5 May) and its make-up workday (Saturday 9 May) in between, so that working days differ
from calendar days; every figure checked against values computed by hand, on the page, in the CSV,
and in the console dashboard for the same period (one computation, two views). No phone, name,
ticket number or ticket text is shown. Bad query parameters get a Chinese 400 page, never a 500."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from bot.app import create_app
from handoff.sla import WorkCalendar
from handoff.stats import COLUMNS, parse_months, ticket_stats
from handoff.tickets import TicketService
from knowledge.errors import InvalidInput
from tests.bot.conftest import make_settings
from tests.handoff.console_helpers import make_users, signed_in

EDU, HR = "区教育局", "区人力资源和社会保障局"  # limits: 5 and 3 working days
NAME, PHONE = "王五", "13912345678"
TODAY = dt.date(2026, 6, 15)


def bj(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    """An aware instant in Beijing time, 2026."""
    return dt.datetime(2026, month, day, hour, minute, tzinfo=dt.timezone(dt.timedelta(hours=8)))


class Clock:
    def __init__(self) -> None:
        self.now = bj(1, 1, 0)

    def __call__(self) -> dt.datetime:
        return self.now


def plant(sessions: sessionmaker[Session]) -> list[str]:
    """The tickets; returns the texts that must never appear in the statistics."""
    clock = Clock()
    svc = TicketService(sessions, WorkCalendar(sessions), limits={EDU: 5, HR: 3}, clock=clock)
    texts: list[str] = []

    def at(when: dt.datetime) -> TicketService:
        clock.now = when
        return svc

    def opened(dept: str, when: dt.datetime, tag: str) -> str:
        question = f"关于{tag}的咨询，请问如何办理"
        texts.append(question)
        t = at(when).open(
            question=question,
            channel="web",
            user_ref=f"citizen-{tag}",
            department=dept,
            contact_name=NAME,
            contact_phone=PHONE,
            consent=True,
        )
        texts.append(t.no)
        return t.no

    def replied(no: str, when: dt.datetime) -> None:
        text = f"您好，答复编号{len(texts)}：请携带材料到窗口办理。"
        texts.append(text)
        at(when).reply(no, staff="zhang", text=text)

    # 区教育局 (5 working days)
    a1 = opened(EDU, bj(4, 30, 10), "学区划分")  # due Mon 11 May (6, 7, 8, Sat 9, 11 May)
    assert svc.get(a1).due_date == dt.date(2026, 5, 11)
    replied(a1, bj(5, 6, 16))  # 6 calendar days, 1 working day: on time
    at(bj(5, 7, 9)).rate(a1, rating="满意")
    a2 = opened(EDU, bj(4, 14, 9), "校车线路")  # due 21 April
    replied(a2, bj(4, 28, 11))  # 10 working days: late
    at(bj(4, 29, 9)).rate(a2, rating="不满意")  # reopened by the citizen
    replied(a2, bj(5, 8, 10))  # the second reply does not change the time to the first one
    a3 = opened(EDU, bj(5, 20, 11), "入学登记")  # due 27 May, never answered: overdue
    at(bj(5, 21, 9)).assign(a3, staff="zhang")
    a4 = opened(EDU, bj(5, 6, 9, 30), "转学手续")  # due 12 May
    replied(a4, bj(5, 7, 15))  # 1 working day
    at(bj(5, 8, 9)).rate(a4, rating="基本满意")  # closes it
    at(bj(5, 9, 10)).reopen(a4, by="sue", reason="答复不完整")  # reopened by a supervisor
    # 区人力资源和社会保障局 (3 working days)
    b1 = opened(HR, bj(4, 29, 15), "社保转移")  # due 7 May (30 April, 6 and 7 May)
    assert svc.get(b1).due_date == dt.date(2026, 5, 7)
    replied(b1, bj(5, 8, 9))  # 9 calendar days, 4 working days: late
    b2 = opened(HR, bj(4, 1, 0, 5), "失业登记")  # 31 March 16:05 UTC: April in Beijing
    replied(b2, bj(4, 1, 9))  # same day: 0
    at(bj(4, 2, 9)).rate(b2, rating="满意")
    b3 = opened(HR, bj(5, 11, 10), "重复提交")
    at(bj(5, 11, 11)).close(b3, by="zhang", reason="重复留言")  # closed without a reply
    opened(HR, bj(3, 31, 23, 50), "三月留言")  # March: outside the period
    opened(EDU, bj(6, 1, 0, 10), "六月留言")  # 31 May 16:10 UTC, but June in Beijing: outside
    return texts


# 部门, 月份 -> COLUMNS: 收到 已答复 按时 超期未答复 按时率 平均 最长 满意 基本满意 不满意 满意率 重新办理
EXPECTED: dict[tuple[str, str], tuple[str, ...]] = {
    (EDU, "2026-04"): ("2", "2", "1", "0", "50.0%", "5.5", "10", "1", "0", "1", "50.0%", "1"),
    (EDU, "2026-05"): ("2", "1", "1", "1", "50.0%", "1.0", "1", "0", "1", "0", "100.0%", "1"),
    (EDU, "all"): ("4", "3", "2", "1", "50.0%", "4.0", "10", "1", "1", "1", "66.7%", "2"),
    (HR, "2026-04"): ("2", "2", "1", "0", "50.0%", "2.0", "4", "1", "0", "0", "100.0%", "0"),
    (HR, "2026-05"): ("1", "0", "0", "0", "—", "—", "—", "0", "0", "0", "—", "0"),
    (HR, "all"): ("3", "2", "1", "0", "50.0%", "2.0", "4", "1", "0", "0", "100.0%", "0"),
    ("all", "2026-04"): ("4", "4", "2", "0", "50.0%", "3.8", "10", "2", "0", "1", "66.7%", "1"),
    ("all", "2026-05"): ("3", "1", "1", "1", "50.0%", "1.0", "1", "0", "1", "0", "100.0%", "1"),
    ("all", "all"): ("7", "5", "3", "1", "50.0%", "3.2", "10", "2", "1", "1", "75.0%", "2"),
}


def test_calendar_of_the_scenario() -> None:
    """The hand computation rests on the official 2026 arrangement (chinese_calendar)."""
    cal = WorkCalendar()
    assert [cal.is_workday(dt.date(2026, 5, d)) for d in range(1, 12)] == [
        False, False, False, False, False, True, True, True, True, False, True,
    ]  # fmt: skip
    assert cal.working_days_between(dt.date(2026, 4, 30), dt.date(2026, 5, 6)) == 1
    assert cal.working_days_between(dt.date(2026, 4, 29), dt.date(2026, 5, 8)) == 4


def test_figures(engine: Any) -> None:
    from knowledge.db import make_sessionmaker

    sessions = make_sessionmaker(engine)
    plant(sessions)
    st = ticket_stats(
        sessions, WorkCalendar(sessions), dt.date(2026, 4, 1), dt.date(2026, 5, 31), today=TODAY
    )
    assert st.months == ("2026-04", "2026-05")
    assert st.departments == (EDU, HR)  # most tickets first
    for dept in (EDU, HR):
        for month in st.months:
            assert st.cell(dept, month).cells() == EXPECTED[(dept, month)], (dept, month)
        assert st.department(dept).cells() == EXPECTED[(dept, "all")], dept
    for month in st.months:
        assert st.month(month).cells() == EXPECTED[("all", month)], month
    total = st.total
    assert total.cells() == EXPECTED[("all", "all")]
    assert total.durations == ((0, 1), (1, 2), (4, 1), (10, 1))
    assert (total.due, total.late, total.median_days, total.p90_days) == (6, 3, 1.0, 10)
    assert sum(n for _, n in st.daily_received) == 7
    assert dict(st.daily_received)[dt.date(2026, 4, 1)] == 1  # the 00:05 ticket, by its Beijing day
    # The unanswered ticket is not overdue before its due date.
    early = ticket_stats(
        sessions,
        WorkCalendar(sessions),
        dt.date(2026, 5, 1),
        dt.date(2026, 5, 31),
        today=dt.date(2026, 5, 27),
    )
    assert early.cell(EDU, "2026-05").overdue_open == 0 and early.cell(EDU, "2026-05").on_time_rate == 1.0


def test_parse_months() -> None:
    assert parse_months("", "", today=TODAY) == (dt.date(2025, 7, 1), dt.date(2026, 6, 30))
    assert parse_months("2026-4", "2026-05", today=TODAY) == (dt.date(2026, 4, 1), dt.date(2026, 5, 31))
    assert parse_months("2024-07", "2026-06", today=TODAY)[0] == dt.date(2024, 7, 1)  # 24 months
    for first, last in (
        ("2026-13", ""),
        ("2026-00", ""),
        ("abc", ""),
        ("1999-12", "2000-01"),
        ("2026-05", "2026-04"),
        ("", "2026-07"),
        ("2024-06", "2026-06"),
        ("2026-05-01", ""),
    ):
        with pytest.raises(InvalidInput):
            parse_months(first, last, today=TODAY)


# --- through the HTTP app ----------------------------------------------------------------------------


@pytest.fixture
def app(db_url: str) -> Iterator[FastAPI]:
    application = create_app(make_settings(db_url))
    application.state.planted = plant(application.state.sessions)
    yield application
    application.state.engine.dispose()


def table(page: str, ident: str) -> list[list[str]]:
    """The body and footer rows of the table `ident` as cell texts."""
    found = re.search(rf'<table[^>]*id="{ident}"[^>]*>(.*?)</table>', page, re.S)
    assert found, f"no table {ident}"
    body = found.group(1).split("</thead>", 1)[1]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r, re.S)
        ]
        for r in rows
    ]


def assert_no_personal_data(text: str, planted: list[str]) -> None:
    for needle in [NAME, PHONE, "138****", "139****5678", "****", *planted]:
        assert needle not in text, needle


def test_page_shows_every_figure(app: FastAPI) -> None:
    client = TestClient(app)
    board = client.get("/board")
    assert 'href="/board/stats"' in board.text
    page = client.get("/board/stats", params={"from": "2026-04", "to": "2026-05"})
    assert page.status_code == 200
    text = page.text
    assert "2026年4月至2026年5月收到的留言" in text
    months = table(text, "stats-months")
    assert months == [
        ["2026年4月", *EXPECTED[("all", "2026-04")]],
        ["2026年5月", *EXPECTED[("all", "2026-05")]],
        ["合计", *EXPECTED[("all", "all")]],
    ]
    assert table(text, "stats-departments") == [
        [EDU, *EXPECTED[(EDU, "all")]],
        [HR, *EXPECTED[(HR, "all")]],
        ["合计", *EXPECTED[("all", "all")]],
    ]
    assert table(text, "stats-cells") == [
        [dept, f"2026年{m}月", *EXPECTED[(dept, f"2026-0{m}")]] for dept in (EDU, HR) for m in (4, 5)
    ]
    for caption in ("各月办理情况", "各部门办理情况", "各部门分月办理情况"):
        assert f"2026年4月至2026年5月{caption}</caption>" in text
    assert '<th scope="col">月份</th>' in text and '<th scope="row">2026年4月</th>' in text
    # the charts: SVG with a text alternative naming every figure drawn
    assert text.count('role="img"') == 2
    assert "2026年4月：收到4件，按时答复2件，超期答复2件，未答复0件" in text
    assert f"{HR}：收到3件，按时答复1件，超期答复1件，未答复1件" in text
    # the period totals
    kpis = re.search(r'<ul class="counts kpis stats-kpis"[^>]*>(.*?)</ul>', text, re.S)
    assert kpis and [re.sub(r"<[^>]+>", "", b) for b in re.findall(r"<b>(.*?)</b>", kpis.group(1))] == [
        "7", "5", "50.0%", "3.2", "10", "75.0%", "2",
    ]  # fmt: skip
    assert "script" not in text.split("<main", 1)[1].lower()
    assert_no_personal_data(text, app.state.planted)


def test_csv(app: FastAPI) -> None:
    r = TestClient(app).get("/board/stats.csv", params={"from": "2026-04", "to": "2026-05"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="liuyan-banli-tongji-2026-04-2026-05.csv"' in r.headers["content-disposition"]
    assert r.content.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel opens it as UTF-8
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0] == ["部门", "月份", *COLUMNS]
    period = "2026-04至2026-05"
    assert rows[1:] == [
        ["全部", period, *EXPECTED[("all", "all")]],
        ["全部", "2026-04", *EXPECTED[("all", "2026-04")]],
        ["全部", "2026-05", *EXPECTED[("all", "2026-05")]],
        [EDU, period, *EXPECTED[(EDU, "all")]],
        [EDU, "2026-04", *EXPECTED[(EDU, "2026-04")]],
        [EDU, "2026-05", *EXPECTED[(EDU, "2026-05")]],
        [HR, period, *EXPECTED[(HR, "all")]],
        [HR, "2026-04", *EXPECTED[(HR, "2026-04")]],
        [HR, "2026-05", *EXPECTED[(HR, "2026-05")]],
    ]
    assert_no_personal_data(r.content.decode("utf-8-sig"), app.state.planted)


def test_dashboard_shows_the_same_figures(app: FastAPI) -> None:
    make_users(app, EDU)
    sue = signed_in(app, "sue")
    period = {"start": "2026-04-01", "end": "2026-05-31"}
    dash = sue.get("/console/dashboard", params=period)
    assert dash.status_code == 200
    public = TestClient(app).get("/board/stats", params={"from": "2026-04", "to": "2026-05"})
    assert table(dash.text, "stats-departments") == table(public.text, "stats-departments")
    kpis = re.search(r'<ul class="counts kpis"[^>]*>(.*?)</ul>', dash.text, re.S)
    assert kpis and "<b>7</b>收到留言" in kpis.group(1) and "<b>5</b>已答复" in kpis.group(1)
    assert "<b>3</b>超期" in kpis.group(1)  # 2 answered late + 1 unanswered past its due date
    exported = sue.get("/console/dashboard.csv", params=period).content.decode("utf-8-sig")
    public_csv = TestClient(app).get("/board/stats.csv", params={"from": "2026-04", "to": "2026-05"})
    public_rows = list(csv.reader(io.StringIO(public_csv.content.decode("utf-8-sig"))))
    dash_rows = list(csv.reader(io.StringIO(exported)))
    start = dash_rows.index(public_rows[0])
    assert dash_rows[start : start + len(public_rows)] == public_rows


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"from": "2026-13"}, "起始月份格式应为"),
        ({"from": "abc", "to": "2026-05"}, "起始月份格式应为"),
        ({"to": "2026/05"}, "截止月份格式应为"),
        ({"from": "2026-05", "to": "2026-04"}, "起始月份不能晚于截止月份"),
        ({"from": "2000-01", "to": "2026-05"}, "统计区间最长 24 个月"),
        ({"to": "2999-01"}, "截止月份不能晚于本月"),
        ({"from": "2026-04" * 10}, "请求参数不正确"),
    ],
)
def test_bad_parameters(app: FastAPI, query: dict[str, str], message: str) -> None:
    client = TestClient(app, raise_server_exceptions=False)
    for path in ("/board/stats", "/board/stats.csv"):
        r = client.get(path, params=query)
        assert r.status_code == 400, (path, r.status_code)
        assert message in r.text and "Traceback" not in r.text
